//! `backup` and `restore`: a consistent copy of the database while the server runs, and putting
//! one back while it does not.
//!
//! Backup uses SQLite's online backup API in a single step (`step(-1)`): the whole copy is taken
//! inside one read transaction, so it is a consistent snapshot even while writers keep writing
//! (in WAL mode readers do not block writers, and a single step cannot be restarted by them).
//! The copy goes to `<file>.partial`, is integrity-checked, then renamed into place, so a failed
//! backup never leaves a file that looks complete. Restore checks the file's integrity and schema
//! version first and refuses while a server holds the data dir's lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::db::migrate::{sections, SCHEMA_SQL};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; remove it or pass --force")]
    Exists(PathBuf),
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("a claude-manager server is running on this data dir ({lock} is locked); stop it before {doing}")]
    ServerRunning { lock: PathBuf, doing: &'static str },
    #[error("integrity check of {path} failed: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path} has schema version {found}, newer than this binary's {supported}")]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the copy did not finish (the database stayed busy); try again")]
    Busy,
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a finished backup or restore reports.
#[derive(Debug)]
pub struct Copied {
    pub pages: i32,
    pub bytes: u64,
}

/// Copies the live database at `db` to `dest`, consistently, while the server may be writing.
pub fn backup(db: &Path, dest: &Path, force: bool) -> Result<Copied, BackupError> {
    if !db.exists() {
        return Err(BackupError::NoDatabase(db.to_path_buf()));
    }
    if dest.exists() && !force {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);

    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let pages = {
        let mut dst = Connection::open(&partial)?;
        let copy = Backup::new(&src, &mut dst)?;
        match copy.step(-1)? {
            StepResult::Done => {}
            _ => return Err(BackupError::Busy),
        }
        copy.progress().pagecount
    };
    check_integrity(&partial)?;
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    let bytes = std::fs::metadata(dest).map_err(io(dest))?.len();
    Ok(Copied { pages, bytes })
}

/// Runs `PRAGMA integrity_check` and the schema-version check on a database file.
pub fn check_integrity(path: &Path) -> Result<u32, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let detail: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if detail != "ok" {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            detail,
        });
    }
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = sections(SCHEMA_SQL)
        .ok()
        .and_then(|s| s.last().map(|(v, _)| *v))
        .unwrap_or(0);
    if found > supported {
        return Err(BackupError::TooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    Ok(found)
}

/// The data dir's lock: held by a running server, tried by restore.
pub struct DataDirLock {
    _lock: nix::fcntl::Flock<File>,
}

impl DataDirLock {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("claude-manager.lock")
    }

    /// Takes the lock, or fails at once if another process holds it; the error says to stop
    /// the server before `doing` (what the caller was about to do, e.g. "restoring").
    pub fn try_acquire(data_dir: &Path, doing: &'static str) -> Result<DataDirLock, BackupError> {
        use nix::fcntl::{Flock, FlockArg};
        let path = Self::path(data_dir);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            // `Flock` unlocks on drop: the lock lives as long as this value.
            Ok(locked) => Ok(DataDirLock { _lock: locked }),
            Err((_, _)) => Err(BackupError::ServerRunning { lock: path, doing }),
        }
    }
}

/// Replaces the database at `db` with the verified copy `src` (server stopped).
pub fn restore(data_dir: &Path, db: &Path, src: &Path) -> Result<Copied, BackupError> {
    if !src.exists() {
        return Err(BackupError::NoDatabase(src.to_path_buf()));
    }
    check_integrity(src)?;
    let _lock = DataDirLock::try_acquire(data_dir, "restoring")?;
    let mut dst = Connection::open(db)?;
    dst.restore(
        rusqlite::MAIN_DB,
        src,
        None::<fn(rusqlite::backup::Progress)>,
    )?;
    dst.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    drop(dst);
    check_integrity(db)?;
    let bytes = std::fs::metadata(db).map_err(io(db))?.len();
    Ok(Copied { pages: 0, bytes })
}
