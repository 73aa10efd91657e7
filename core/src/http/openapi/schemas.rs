//! The document's component schemas, each derived from the Rust type that the server reads or
//! writes (`utoipa::ToSchema`), so a field added, renamed or made optional changes the document.

use std::collections::BTreeMap;

use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

/// Collects the schema of `T` and of every type it references.
fn add<T: ToSchema>(out: &mut BTreeMap<String, RefOr<Schema>>) {
    out.insert(T::name().into_owned(), T::schema());
    let mut referenced = Vec::new();
    T::schemas(&mut referenced);
    out.extend(referenced);
}

/// Every component schema, by name.
pub fn components() -> BTreeMap<String, RefOr<Schema>> {
    let mut out = BTreeMap::new();
    add::<crate::http::handlers::Liveness>(&mut out);
    add::<crate::health::HealthReport>(&mut out);
    // tenants, apps, keys, events, problem
    add::<crate::tenants::Tenant>(&mut out);
    add::<crate::http::tenants::TenantListResponse>(&mut out);
    add::<crate::http::tenants::ProvisionTenantRequest>(&mut out);
    add::<crate::tenants::Provisioned>(&mut out);
    add::<crate::http::tenants::UpdateTenantRequest>(&mut out);
    add::<crate::http::tenants::SuspendTenantRequest>(&mut out);
    add::<crate::http::tenants::StatusChangeResponse>(&mut out);
    add::<crate::apps::App>(&mut out);
    add::<crate::http::apps::AppListResponse>(&mut out);
    add::<crate::http::apps::RegisterAppRequest>(&mut out);
    add::<crate::http::apps::UpdateAppRequest>(&mut out);
    add::<crate::http::apps::AppChangeResponse>(&mut out);
    add::<crate::http::apps::KeyResponse>(&mut out);
    add::<crate::http::apps::KeyListResponse>(&mut out);
    add::<crate::http::apps::IssueKeyRequest>(&mut out);
    add::<crate::http::apps::IssuedKeyResponse>(&mut out);
    add::<crate::http::apps::TenantAppResponse>(&mut out);
    add::<crate::http::oidc::ClientSecret<'static>>(&mut out);
    add::<crate::http::problem::ProblemBody>(&mut out);
    add::<crate::events::ingest::IngestOutcome>(&mut out);
    add::<crate::events::model::ReportedBillingEvent>(&mut out);
    add::<crate::events::model::ReportedAuditEvent>(&mut out);
    add::<crate::http::tenant_users::PlanRequest>(&mut out);
    add::<crate::http::tenant_users::PlanChange<'static>>(&mut out);
    // identity: sign-in, passwords, MFA, passkeys, tokens, OpenID provider
    add::<crate::http::tokens::Jwks>(&mut out);
    add::<crate::http::tokens::SigningKeyRotation>(&mut out);
    add::<crate::http::tokens::IntrospectRequest>(&mut out);
    add::<crate::http::tokens::Introspection>(&mut out);
    add::<crate::http::passwords::AcceptInvitationRequest>(&mut out);
    add::<crate::http::passwords::AcceptedInvitation>(&mut out);
    add::<crate::http::passwords::ForgotPasswordRequest>(&mut out);
    add::<crate::http::passwords::ResetPasswordRequest>(&mut out);
    add::<crate::http::passwords::ChangePasswordRequest>(&mut out);
    add::<crate::users::PasswordPolicy>(&mut out);
    add::<crate::http::sign_in::LoginBody>(&mut out);
    add::<crate::sessions::TokenPair>(&mut out);
    add::<crate::http::sign_in::RefreshRequest>(&mut out);
    add::<crate::http::totp::MfaCodeRequest>(&mut out);
    add::<crate::users::mfa::Enrollment>(&mut out);
    add::<crate::http::totp::RecoveryCodes>(&mut out);
    add::<crate::http::tenant_users::SessionsRevoked>(&mut out);
    add::<crate::http::sign_in::MfaEnrollRequest>(&mut out);
    add::<crate::signin::MfaSignIn>(&mut out);
    add::<crate::webauthn::Options>(&mut out);
    add::<crate::webauthn::RegistrationResponse>(&mut out);
    add::<crate::webauthn::AuthenticationResponse>(&mut out);
    add::<crate::http::webauthn::RegisterVerifyRequest>(&mut out);
    add::<crate::webauthn::CredentialSummary>(&mut out);
    add::<crate::http::webauthn::CredentialList>(&mut out);
    add::<crate::http::webauthn::LoginOptionsRequest>(&mut out);
    add::<crate::http::webauthn::LoginVerifyRequest>(&mut out);
    add::<crate::http::webauthn::MfaOptionsRequest>(&mut out);
    add::<crate::http::oidc::ProviderMetadata>(&mut out);
    add::<crate::http::oidc::OAuthError>(&mut out);
    add::<crate::oidc::token::TokenResponse>(&mut out);
    add::<crate::oidc::token::UserinfoClaims>(&mut out);
    // flags, tenant users, SSO
    add::<crate::flags::FlagSet>(&mut out);
    add::<crate::http::flags::SetFlagRequest>(&mut out);
    add::<crate::http::flags::FlagChangeResponse>(&mut out);
    add::<crate::http::flags::SnapshotResponse<'static>>(&mut out);
    add::<crate::http::flags::OfrepRequest>(&mut out);
    add::<crate::flags::ofrep::Bulk<'static>>(&mut out);
    add::<crate::flags::PlanFlag>(&mut out);
    add::<crate::flags::PlanFlagChange>(&mut out);
    add::<crate::users::admin::UserView>(&mut out);
    add::<crate::users::admin::UserPage>(&mut out);
    add::<crate::http::tenant_users::UpdateUserRequest>(&mut out);
    add::<crate::http::tenant_users::InviteRequest>(&mut out);
    add::<crate::http::tenant_users::ResendRequest>(&mut out);
    add::<crate::users::invite::Invitation>(&mut out);
    add::<crate::http::tenant_users::InvitationList>(&mut out);
    add::<crate::users::privacy::PersonalDataExport>(&mut out);
    add::<crate::sso::SsoConfigView>(&mut out);
    add::<crate::http::sso::SsoConfigRequest>(&mut out);
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// Removes what does not change which documents a schema accepts: prose, and spellings that
    /// mean the same thing (`const` and a one-value `enum`; `type: string` beside an `enum` of
    /// strings; integer formats; key order of `required`).
    pub(in crate::http::openapi) fn normalize(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    match k.as_str() {
                        "description" | "title" | "examples" | "example" => {}
                        "format"
                            if matches!(
                                x.as_str(),
                                Some("int32" | "int64" | "uint32" | "uint64" | "double" | "float")
                            ) => {}
                        "oneOf" | "allOf" | "anyOf"
                            if x.as_array().is_some_and(|a| a.len() == 1) =>
                        {
                            // A one-way choice is its only branch (utoipa wraps inlined types so).
                            if let Some(Value::Object(inner)) = normalize(&x[0])
                                .as_object()
                                .map(|o| Value::Object(o.clone()))
                            {
                                out.extend(inner);
                            }
                        }
                        "const" => {
                            out.insert("enum".into(), Value::Array(vec![x.clone()]));
                        }
                        "required" => {
                            let mut r: Vec<Value> = x.as_array().cloned().unwrap_or_default();
                            r.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                            if !r.is_empty() {
                                out.insert(k.clone(), Value::Array(r));
                            }
                        }
                        _ => {
                            out.insert(k.clone(), normalize(x));
                        }
                    }
                }
                let strings = out
                    .get("enum")
                    .and_then(Value::as_array)
                    .is_some_and(|e| e.iter().all(Value::is_string));
                if strings && out.get("type") == Some(&Value::from("string")) {
                    out.remove("type");
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
            _ => v.clone(),
        }
    }

    /// Each derived schema accepts and describes what the written document says.
    #[test]
    fn derived_schemas_match_the_document() {
        let doc: Value = serde_json::from_str(super::super::DOCUMENT).expect("JSON");
        let mut wrong = Vec::new();
        for (name, schema) in components() {
            let derived = serde_json::to_value(&schema).expect("schema serializes");
            let Some(written) = doc["components"]["schemas"].get(&name) else {
                wrong.push(format!("{name}: not in the document"));
                continue;
            };
            let (d, w) = (normalize(&derived), normalize(written));
            if d != w {
                wrong.push(format!("{name}:\n  derived {d}\n  written {w}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
