//! Reading apps and keys: one app by id, the app list, and an app's keys, each list newest
//! first with keyset pagination (never OFFSET).

use super::load;
use super::model::{app_columns, key_columns, ApiKey, App, AppId, AppStatus};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::ports::{Platform, Sql, SqlError, Stmt};
use crate::tenants::{Page, DEFAULT_LIMIT, MAX_LIMIT};

/// The keyset start of the first page: above any `created_at` (kept below 2^53 for D1).
const FIRST_PAGE_CREATED_AT: i64 = (1 << 53) - 1;

/// Why an app could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GetAppError {
    /// No app has this id.
    #[error("no app {id}")]
    NotFound {
        /// The id asked for.
        id: AppId,
    },
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl GetAppError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GetAppError::NotFound { .. } => "app_not_found",
            GetAppError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            GetAppError::NotFound { .. } => ErrorKind::NotFound,
            GetAppError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(GetAppError);

/// The app list's parameters (`GET /v1/apps?status=&cursor=&limit=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListApps {
    /// Only apps in this status.
    pub status: Option<AppStatus>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    pub limit: Option<u32>,
}

/// Why an app list request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListAppsError {
    /// `limit` outside 1 to [`MAX_LIMIT`].
    #[error("limit must be between 1 and {max}")]
    InvalidLimit {
        /// The largest page size.
        max: u32,
    },
    /// `cursor` is not one this API issued.
    #[error("cursor is not valid")]
    InvalidCursor,
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl ListAppsError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ListAppsError::InvalidLimit { .. } => "invalid_limit",
            ListAppsError::InvalidCursor => "invalid_cursor",
            ListAppsError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ListAppsError::InvalidLimit { .. } => ErrorKind::InvalidField("limit"),
            ListAppsError::InvalidCursor => ErrorKind::InvalidField("cursor"),
            ListAppsError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(ListAppsError);

/// The key list's parameters (`GET /v1/apps/{id}/keys?cursor=&limit=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListKeys {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    pub limit: Option<u32>,
}

/// Why a key list request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListKeysError {
    /// No app has this id.
    #[error("no app {id}")]
    AppNotFound {
        /// The id asked for.
        id: AppId,
    },
    /// `limit` outside 1 to [`MAX_LIMIT`].
    #[error("limit must be between 1 and {max}")]
    InvalidLimit {
        /// The largest page size.
        max: u32,
    },
    /// `cursor` is not one this API issued.
    #[error("cursor is not valid")]
    InvalidCursor,
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl ListKeysError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ListKeysError::AppNotFound { .. } => "app_not_found",
            ListKeysError::InvalidLimit { .. } => "invalid_limit",
            ListKeysError::InvalidCursor => "invalid_cursor",
            ListKeysError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ListKeysError::AppNotFound { .. } => ErrorKind::NotFound,
            ListKeysError::InvalidLimit { .. } => ErrorKind::InvalidField("limit"),
            ListKeysError::InvalidCursor => ErrorKind::InvalidField("cursor"),
            ListKeysError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(ListKeysError);

/// A page request checked: the keyset position and the page size.
struct Window {
    after_created: i64,
    after_id: String,
    limit: usize,
}

impl Window {
    /// Checks the limit and decodes the cursor; `Err(true)` for a bad limit, `Err(false)` for a
    /// bad cursor.
    fn new(cursor: Option<&str>, limit: Option<u32>) -> Result<Self, bool> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(true);
        }
        let (after_created, after_id) = match cursor {
            None => (FIRST_PAGE_CREATED_AT, String::new()),
            Some(c) => decode_cursor(c).ok_or(false)?,
        };
        Ok(Window {
            after_created,
            after_id,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }

    /// Rows to fetch: one more than the page, to tell whether another follows.
    fn fetch(&self) -> i64 {
        i64::try_from(self.limit + 1).unwrap_or(i64::MAX)
    }

    /// Cuts the rows to the page and makes the next cursor.
    fn page<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> (i64, String)) -> Page<T> {
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        let next_cursor = match items.last() {
            Some(last) if more => {
                let (created_at, id) = key(last);
                Some(encode_cursor(created_at, &id))
            }
            _ => None,
        };
        Page { items, next_cursor }
    }
}

/// An app by id, in any status.
pub async fn get<P: Platform>(p: &P, id: &AppId) -> Result<App, GetAppError> {
    load(p, id)
        .await?
        .ok_or_else(|| GetAppError::NotFound { id: id.clone() })
}

/// One page of apps, newest first (by `created_at`, then id), optionally of one status.
/// Apps are few (one per managed product), so the table is scanned and sorted.
pub async fn list<P: Platform>(p: &P, req: &ListApps) -> Result<Page<App>, ListAppsError> {
    let w = Window::new(req.cursor.as_deref(), req.limit).map_err(|bad_limit| {
        if bad_limit {
            ListAppsError::InvalidLimit { max: MAX_LIMIT }
        } else {
            ListAppsError::InvalidCursor
        }
    })?;
    let stmt = match req.status {
        None => Stmt::new(concat!(
            "SELECT ",
            app_columns!(),
            " FROM apps WHERE (created_at, id) < (?1, ?2) AND id <> 'edgeplane-console'
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
        )),
        Some(_) => Stmt::new(concat!(
            "SELECT ",
            app_columns!(),
            " FROM apps WHERE status = ?4 AND (created_at, id) < (?1, ?2) AND id <> 'edgeplane-console'
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
        )),
    }
    .bind(w.after_created)
    .bind(w.after_id.as_str())
    .bind(w.fetch());
    let stmt = match req.status {
        Some(s) => stmt.bind(s.as_str()),
        None => stmt,
    };
    let rows = p.sql().query(stmt).await?;
    let items = rows
        .iter()
        .map(App::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(w.page(items, |a| (a.created_at, a.id.as_str().to_owned())))
}

/// One page of an app's keys, newest first, revoked and expired ones included (their
/// `revoked_at` and `expires_at` say so). Never the secret or its hash.
pub async fn list_keys<P: Platform>(
    p: &P,
    app_id: &AppId,
    req: &ListKeys,
) -> Result<Page<ApiKey>, ListKeysError> {
    let w = Window::new(req.cursor.as_deref(), req.limit).map_err(|bad_limit| {
        if bad_limit {
            ListKeysError::InvalidLimit { max: MAX_LIMIT }
        } else {
            ListKeysError::InvalidCursor
        }
    })?;
    if load(p, app_id).await?.is_none() {
        return Err(ListKeysError::AppNotFound { id: app_id.clone() });
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                key_columns!(),
                " FROM api_keys WHERE app_id = ?1 AND (created_at, id) < (?2, ?3)
                     ORDER BY created_at DESC, id DESC LIMIT ?4"
            ))
            .bind(app_id.as_str())
            .bind(w.after_created)
            .bind(w.after_id.as_str())
            .bind(w.fetch()),
        )
        .await?;
    let items = rows
        .iter()
        .map(ApiKey::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(w.page(items, |k| (k.created_at, k.id.as_str().to_owned())))
}

/// An opaque cursor for the keyset position (created_at, id).
fn encode_cursor(created_at: i64, id: &str) -> String {
    crypto::b64url_encode(format!("{created_at}:{id}").as_bytes())
}

/// The keyset position of a cursor, `None` if it is not one [`encode_cursor`] made. The id is
/// an app UUID or a key id: bounded and plain, so it is only checked for its characters.
fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    if cursor.len() > 128 {
        return None;
    }
    let text = String::from_utf8(crypto::b64url_decode(cursor)?).ok()?;
    let (created_at, id) = text.split_once(':')?;
    let created_at = created_at.parse::<i64>().ok()?;
    let plain = !id.is_empty()
        && id.len() <= 36
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
    plain.then(|| (created_at, id.to_owned()))
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
            &crypto::b64url_encode(b"12:"),
            &crypto::b64url_encode(b"12:x' OR 1"),
            &crypto::b64url_encode(b"x:0190a1b2"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        assert!(Window::new(None, Some(0)).is_err());
        assert!(Window::new(None, Some(101)).is_err());
        assert_eq!(Window::new(Some("!!"), None).err(), Some(false));
    }
}
