//! Signing tenant users in and checking their tokens at the edge (UC-LISTEN, FR-AUTH-001/005,
//! NFR-SEC-003): the password step ([`login`]), the SSO sign-in behind the risk check
//! ([`sso_sign_in`]), the second factor (TOTP, a passkey or a mailed code), and the
//! access-token check with its revocation markers ([`introspect`]). A service over the domains
//! it makes act together: users (passwords, factors), passkeys, tenants (their edge status) and
//! sessions (which it starts); none of them depends on it.

mod introspect;
mod login;
mod mfa;
mod refresh;
mod sso;

pub use introspect::{
    authenticate_access_token, check_token_with, introspect, keys_checked, AccessError,
    UserPrincipal,
};
pub use login::{authenticate, login, Authenticated, LoginError, LoginRequest};
pub use mfa::{
    enroll_during_sign_in, verify_mfa, verify_mfa_with, verify_second_factor, webauthn_options,
    CheckedFactor, FirstFactor, MfaSignIn, SecondFactor, VerifyMfaError, EMAIL_CODE_TTL_MS,
    MAX_MFA_ATTEMPTS, MFA_TOKEN_TTL_MS,
};
pub use refresh::refresh_from;
pub(crate) use refresh::refresh_grant_from;
pub use sso::{sso_sign_in, SsoOutcome, SsoStepUp, StepUpFactor};
