//! Tenant single sign-on (FR-AUTH-003, UC-TENANT-SSO): Edgeplane as an OpenID Connect relying
//! party of each tenant's own identity provider.
//!
//! - [`config`]: the owner-only configuration (issuer, client id, client secret sealed under
//!   `MASTER_KEY`), checked against the issuer's discovery document before it is saved.
//! - [`discovery`]: fetching and judging that document; every outbound fetch of this module goes
//!   to the configured issuer's origin only, and only to a public https host (loopback too in
//!   development), checked where the fetch happens.
//! - [`id_token`]: validation of the IdP's ID token (signature via its JWKS, RS256/ES256 only,
//!   `iss`, `aud`, `azp`, `exp`/`iat`, `nonce`, a verified email).
//! - [`flow`]: the redirect (code + PKCE S256 + state + nonce, kept in `auth_flows` kind `sso`)
//!   and the callback, which matches the user by verified email within the tenant.
//!
//! Parsing JWS, JWKs and fetching JSON reuse the operator sign-in code of [`crate::auth`].

pub mod config;
pub mod discovery;
pub mod flow;
pub mod id_token;

#[cfg(test)]
mod tests;

pub use config::{SsoConfigError, SsoConfigInput, SsoConfigView};
pub use flow::{SsoCallbackError, SsoSignIn, SsoStart, SsoStartError};
pub use id_token::IdTokenError;
