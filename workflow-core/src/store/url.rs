//! Choosing a store from a URL.

use std::sync::Arc;

use super::{MemoryStore, Store};
use crate::error::Error;

/// The environment variable that [`from_env`](crate::store::open_from_url)
/// users conventionally read the store URL from.
pub const STORE_URL_VAR: &str = "WORKFLOW_DATABASE_URL";

/// Opens the store a URL names.
///
/// | URL | store |
/// | --- | --- |
/// | `sqlite://path/to/file.db`, `sqlite:file.db` | [`SqliteStore`](crate::SqliteStore) on that file |
/// | `memory:` | [`MemoryStore`] (nothing survives the process) |
///
/// `postgres://` URLs are reserved for the PostgreSQL store.
///
/// # Errors
///
/// [`Error::Config`] for a URL of an unknown or unavailable kind, and
/// [`Error::Store`] when the store cannot be opened.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> workflow_core::Result<()> {
/// let store = workflow_core::store::open_from_url("memory:").await?;
/// assert!(workflow_core::store::open_from_url("ftp://x").await.is_err());
/// # Ok(())
/// # }
/// ```
pub async fn open_from_url(url: &str) -> Result<Arc<dyn Store>, Error> {
    let url = url.trim();
    if url == "memory:" || url == "memory://" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return open_sqlite(path).await;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(Error::Config(
            "PostgreSQL store URLs are not supported by this build; use `sqlite://FILE`".into(),
        ));
    }
    Err(Error::Config(format!(
        "unknown store URL `{}`: expected `sqlite://FILE` or `memory:`",
        url.chars().take(80).collect::<String>()
    )))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(path: &str) -> Result<Arc<dyn Store>, Error> {
    if path.is_empty() {
        return Err(Error::Config(
            "`sqlite://` needs a file path, as in `sqlite://workflow.db`".into(),
        ));
    }
    Ok(Arc::new(crate::SqliteStore::open(path).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_path: &str) -> Result<Arc<dyn Store>, Error> {
    Err(Error::Config(
        "SQLite support is not built in; enable the `sqlite` feature".into(),
    ))
}
