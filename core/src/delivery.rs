//! What an API key may read at the edge (FR-FLAG-002): which tenant's flag snapshot it is served.
//! A tenant-bound key reads its own tenant; an app-wide key reads the tenant it names, if that
//! tenant is live at the edge and has the key's app enabled. Another tenant's flags are "not
//! found", never "forbidden". Above flags and tenants, so neither has to know the other.

use std::rc::Rc;

use crate::apps::AppKeyPrincipal;
use crate::flags::snapshot::{self, Snapshot};
use crate::kernel::{ErrorKind, TenantId};
use crate::ports::Platform;
use crate::tenants::{tenant_edge_status, EdgeStatus};

/// Why a key may not read a tenant's flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantAccessError {
    /// No such tenant for this key (another tenant's, unknown, or without the key's app).
    #[error("no such tenant for this API key")]
    NotFound,
    /// An app-wide key named no tenant.
    #[error("an app-wide API key needs the tenant")]
    TenantRequired,
    /// The named tenant is suspended.
    #[error("the tenant is suspended")]
    Suspended,
    /// The named tenant is deleted.
    #[error("the tenant is deleted")]
    Deleted,
    /// The edge store could not be read.
    #[error("the flag store is unavailable: {0}")]
    Unavailable(String),
}

impl TenantAccessError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TenantAccessError::NotFound => "tenant_not_found",
            TenantAccessError::TenantRequired => "tenant_required",
            TenantAccessError::Suspended => "tenant_suspended",
            TenantAccessError::Deleted => "tenant_deleted",
            TenantAccessError::Unavailable(_) => "flag_storage_unavailable",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TenantAccessError::NotFound => ErrorKind::NotFound,
            TenantAccessError::TenantRequired => ErrorKind::Invalid,
            TenantAccessError::Suspended => ErrorKind::Forbidden,
            TenantAccessError::Deleted => ErrorKind::Gone,
            TenantAccessError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(TenantAccessError);

/// The tenant a key reads: its own, or for an app-wide key the one it names (`named`: the
/// evaluation context's `tenantId` or the `tenant` query), live at the edge.
pub async fn tenant_for_key<P: Platform>(
    p: &P,
    principal: &AppKeyPrincipal,
    named: Option<&str>,
) -> Result<TenantId, TenantAccessError> {
    match (&principal.tenant_id, named) {
        (Some(own), None) => Ok(own.clone()),
        (Some(own), Some(n)) => {
            if TenantId::parse(n).ok().as_ref() != Some(own) {
                return Err(TenantAccessError::NotFound);
            }
            Ok(own.clone())
        }
        (None, None) => Err(TenantAccessError::TenantRequired),
        (None, Some(n)) => {
            let t = TenantId::parse(n).map_err(|_| TenantAccessError::NotFound)?;
            match tenant_edge_status(p, &t).await {
                Ok(EdgeStatus::Active) => Ok(t),
                Ok(EdgeStatus::Suspended) => Err(TenantAccessError::Suspended),
                Ok(EdgeStatus::Deleted) => Err(TenantAccessError::Deleted),
                Err(e) => Err(TenantAccessError::Unavailable(e.to_string())),
            }
        }
    }
}

/// The snapshot of `tenant` as `principal` may read it: an app-wide key only where its app is
/// enabled.
pub async fn snapshot_for_key<P: Platform>(
    p: &P,
    principal: &AppKeyPrincipal,
    tenant: &TenantId,
) -> Result<Rc<Snapshot>, TenantAccessError> {
    let snap = snapshot::load(p, tenant)
        .await
        .map_err(|e| TenantAccessError::Unavailable(e.to_string()))?
        .ok_or(TenantAccessError::NotFound)?;
    if principal.tenant_id.is_none() && !snap.serves_app(&principal.app_id) {
        return Err(TenantAccessError::NotFound);
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::apps::{KeyId, KeyKind, ScopeSet};
    use crate::kernel::AppId;
    use crate::testing::TestPlatform;

    const OWN: &str = "01900000-0000-7000-8000-000000000001";
    const OTHER: &str = "01900000-0000-7000-8000-000000000002";

    fn key(tenant: Option<&str>) -> AppKeyPrincipal {
        AppKeyPrincipal {
            key_id: KeyId::parse(&"a".repeat(32)).unwrap(),
            app_id: AppId::parse("01900000-0000-7000-8000-0000000000aa").unwrap(),
            tenant_id: tenant.map(|t| TenantId::parse(t).unwrap()),
            kind: KeyKind::Server,
            scopes: ScopeSet::parse(&["flags:read"]).unwrap(),
        }
    }

    #[test]
    fn fr_flag_002_a_key_reads_only_the_tenant_it_may() {
        block_on(async {
            let p = TestPlatform::new().await;
            let own = TenantId::parse(OWN).unwrap();
            let bound = key(Some(OWN));
            assert_eq!(tenant_for_key(&p, &bound, None).await, Ok(own.clone()));
            assert_eq!(tenant_for_key(&p, &bound, Some(OWN)).await, Ok(own));
            // Another tenant's flags are "not found", however it is named.
            for named in [OTHER, "not-a-tenant-id"] {
                assert_eq!(
                    tenant_for_key(&p, &bound, Some(named)).await,
                    Err(TenantAccessError::NotFound)
                );
            }
            // An app-wide key must name the tenant.
            assert_eq!(
                tenant_for_key(&p, &key(None), None).await,
                Err(TenantAccessError::TenantRequired)
            );
        });
    }
}
