//! Passkeys (WebAuthn) of tenant users (NFR-SEC-003): registration and authentication
//! ceremonies with ES256 and EdDSA credentials and `none` attestation, as passwordless sign-in
//! and as a second factor after the password.
//!
//! Every ceremony starts with options that leave a pending challenge in `auth_flows` (kind
//! `webauthn`, keyed by the hash of a flow handle, the challenge stored as its SHA-256 only,
//! five minutes, single use: the first answer consumes it whatever its outcome). Credentials are
//! rows of `webauthn_credentials` (COSE key base64url, sign count, transports).
//!
//! A registered passkey counts as MFA for the password sign-in (`signin::login` asks for a
//! second factor when `users.mfa_enabled`, which is TOTP's state, or when the user has a
//! passkey); registering one leaves `mfa_enabled` alone, so TOTP enrollment and disabling keep
//! their meaning.
//!
//! The relying party is configured by `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGIN`; in development
//! both default to the request's host and origin.

pub mod cbor;
mod service;
#[cfg(test)]
pub(crate) mod soft_authenticator;
pub mod verify;

#[cfg(test)]
mod tests;

pub use service::{
    check_second_factor, delete_credential, list_credentials, login, login_from, login_options,
    mfa_options, register, registration_options, CredentialSummary, Options, RelyingParty,
    WebAuthnError, FLOW_TTL_MS,
};
pub use verify::{
    AuthenticationResponse, CeremonyError, Expected, RegistrationResponse, ALG_EDDSA, ALG_ES256,
};
