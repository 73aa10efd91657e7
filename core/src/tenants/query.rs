//! Reading tenants: one by id, and the operator list with search, status filter and keyset
//! pagination (newest first, never OFFSET: every page is an index range read).

use super::load;
use super::model::{tenant_columns, Tenant, TenantId, TenantStatus};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::ports::{Platform, Sql, SqlError, Stmt};

/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 50;

/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Longest search text, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// The keyset start of the first page: above any `created_at` (kept below 2^53 for D1, which
/// carries numbers as doubles).
const FIRST_PAGE_CREATED_AT: i64 = (1 << 53) - 1;

/// Why a tenant could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GetTenantError {
    /// No tenant has this id.
    #[error("no tenant {id}")]
    NotFound {
        /// The id asked for.
        id: TenantId,
    },
    /// The tenant was purged (ERR-RES-410).
    #[error("tenant {id} was deleted")]
    Gone {
        /// The id asked for.
        id: TenantId,
    },
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl GetTenantError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GetTenantError::NotFound { .. } => "tenant_not_found",
            GetTenantError::Gone { .. } => "tenant_gone",
            GetTenantError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            GetTenantError::NotFound { .. } => ErrorKind::NotFound,
            GetTenantError::Gone { .. } => ErrorKind::Gone,
            GetTenantError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(GetTenantError);

/// The operator list's parameters (`GET /v1/tenants?q=&status=&cursor=&limit=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTenants {
    /// Case-insensitive prefix of the name or the domain (ASCII case folding); blank is none.
    pub q: Option<String>,
    /// Only tenants in this status. Without it, every tenant except purged tombstones.
    pub status: Option<TenantStatus>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    pub limit: Option<u32>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a list request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListTenantsError {
    /// `limit` outside 1 to [`MAX_LIMIT`].
    #[error("limit must be between 1 and {max}")]
    InvalidLimit {
        /// The largest page size.
        max: u32,
    },
    /// `cursor` is not one this API issued.
    #[error("cursor is not valid")]
    InvalidCursor,
    /// `q` is longer than 200 characters.
    #[error("q must be at most 200 characters")]
    QueryTooLong,
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl ListTenantsError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ListTenantsError::InvalidLimit { .. } => "invalid_limit",
            ListTenantsError::InvalidCursor => "invalid_cursor",
            ListTenantsError::QueryTooLong => "query_too_long",
            ListTenantsError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ListTenantsError::InvalidLimit { .. } => ErrorKind::InvalidField("limit"),
            ListTenantsError::InvalidCursor => ErrorKind::InvalidField("cursor"),
            ListTenantsError::QueryTooLong => ErrorKind::InvalidField("q"),
            ListTenantsError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(ListTenantsError);

/// A tenant by id, in any live status (a pending deletion is returned with its status);
/// purged is [`GetTenantError::Gone`], unknown [`GetTenantError::NotFound`].
pub async fn get<P: Platform>(p: &P, id: &TenantId) -> Result<Tenant, GetTenantError> {
    match load(p, id).await? {
        None => Err(GetTenantError::NotFound { id: id.clone() }),
        Some(t) if t.status == TenantStatus::Deleted => {
            Err(GetTenantError::Gone { id: id.clone() })
        }
        Some(t) => Ok(t),
    }
}

/// One page of tenants (never the synthetic journeys' canary tenants), newest first (by `created_at`, then id), filtered by status and by a
/// name or domain prefix. Keyset pagination: the cursor encodes the last (created_at, id)
/// seen, so pages neither skip nor repeat rows when tenants are added meanwhile.
pub async fn list<P: Platform>(p: &P, req: &ListTenants) -> Result<Page<Tenant>, ListTenantsError> {
    let stmt = list_stmt(req)?;
    let limit = page_limit(req.limit)?;
    let rows = p.sql().query(stmt).await?;
    let mut items = rows
        .iter()
        .map(Tenant::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = match items.last() {
        Some(last) if more => Some(encode_cursor(last.created_at, last.id.as_str())),
        _ => None,
    };
    Ok(Page { items, next_cursor })
}

/// The page size asked for, checked.
fn page_limit(limit: Option<u32>) -> Result<usize, ListTenantsError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ListTenantsError::InvalidLimit { max: MAX_LIMIT });
    }
    Ok(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// The query of one page (one row more than the page, to tell whether another follows).
/// Four literal statements, one per filter combination, so each gets its own index plan.
pub(super) fn list_stmt(req: &ListTenants) -> Result<Stmt, ListTenantsError> {
    let limit = page_limit(req.limit)?;
    let (after_created, after_id) = match &req.cursor {
        None => (FIRST_PAGE_CREATED_AT, String::new()),
        Some(c) => decode_cursor(c).ok_or(ListTenantsError::InvalidCursor)?,
    };
    let q = req.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(ListTenantsError::QueryTooLong);
    }
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    // ?1, ?2: keyset position; ?3: rows to fetch; ?4: status or pattern; ?5: pattern.
    let stmt = match (req.status, q) {
        (None, None) => Stmt::new(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE status <> 'deleted' AND canary = 0 AND (created_at, id) < (?1, ?2)
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .bind(after_created)
        .bind(after_id)
        .bind(fetch),
        (Some(status), None) => Stmt::new(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE status = ?4 AND canary = 0 AND (created_at, id) < (?1, ?2)
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .bind(after_created)
        .bind(after_id)
        .bind(fetch)
        .bind(status.as_str()),
        // A prefix search is two index ranges, `col >= q AND col < q || U+10FFFF`, on the
        // NOCASE name and domain indexes, united by id: explicit ranges use the indexes on every
        // SQLite (D1 does not apply the LIKE optimization to a bound pattern). The matches are
        // then filtered and sorted, a cost bounded by how many tenants share the prefix.
        (None, Some(q)) => Stmt::new(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE id IN (
                 SELECT id FROM tenants WHERE name >= ?4 AND name < ?5
                 UNION SELECT id FROM tenants WHERE domain >= ?4 AND domain < ?5)
               AND status <> 'deleted' AND canary = 0 AND (created_at, id) < (?1, ?2)
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .bind(after_created)
        .bind(after_id)
        .bind(fetch)
        .bind(q.to_owned())
        .bind(prefix_end(q)),
        (Some(status), Some(q)) => Stmt::new(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE id IN (
                 SELECT id FROM tenants WHERE name >= ?5 AND name < ?6
                 UNION SELECT id FROM tenants WHERE domain >= ?5 AND domain < ?6)
               AND status = ?4 AND canary = 0 AND (created_at, id) < (?1, ?2)
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))
        .bind(after_created)
        .bind(after_id)
        .bind(fetch)
        .bind(status.as_str())
        .bind(q.to_owned())
        .bind(prefix_end(q)),
    };
    Ok(stmt)
}

/// The exclusive upper bound of the values starting with `q`: `q` followed by the highest code
/// point, which sorts after every continuation (UTF-8 byte order is code point order).
fn prefix_end(q: &str) -> String {
    let mut end = String::with_capacity(q.len() + 4);
    end.push_str(q);
    end.push(char::MAX);
    end
}

/// An opaque cursor for the keyset position (created_at, id).
fn encode_cursor(created_at: i64, id: &str) -> String {
    crypto::b64url_encode(format!("{created_at}:{id}").as_bytes())
}

/// The keyset position of a cursor, `None` if it is not one [`encode_cursor`] made.
fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    if cursor.len() > 128 {
        return None;
    }
    let text = String::from_utf8(crypto::b64url_decode(cursor)?).ok()?;
    let (created_at, id) = text.split_once(':')?;
    let created_at = created_at.parse::<i64>().ok()?;
    let id = TenantId::parse(id).ok()?;
    Some((created_at, id.into()))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let c = encode_cursor(1_767_225_600_000, id);
        assert_eq!(decode_cursor(&c), Some((1_767_225_600_000, id.to_owned())));
        for bad in [
            "",
            "!!",
            &crypto::b64url_encode(b"12:not-a-uuid"),
            &crypto::b64url_encode(b"x:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        // Wildcards are literal in a range: `a_b` is not a pattern.
        assert_eq!(prefix_end("a_b%"), "a_b%\u{10FFFF}");
        assert!("a_b%c" < prefix_end("a_b%").as_str() && "a_c" > prefix_end("a_b").as_str());
    }
}
