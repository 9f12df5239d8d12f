//! Applies `schema.sql`, versioned with `PRAGMA user_version`.
//!
//! The file is split at `-- version: N` markers; each section newer than the database's
//! user_version runs in one transaction together with the version bump, so a crash mid-migration
//! leaves the previous version intact. Running it again is a no-op.

use rusqlite::Connection;

use super::DbError;

/// The whole schema, compiled in: the binary never depends on files beside it.
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The `(version, sql)` sections of the schema, in order.
pub fn sections(schema: &str) -> Result<Vec<(u32, String)>, DbError> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in schema.lines() {
        if let Some(rest) = line.trim().strip_prefix("-- version:") {
            let v: u32 = rest
                .trim()
                .parse()
                .map_err(|_| DbError::Migration(format!("bad version marker {line:?}")))?;
            if out.last().is_some_and(|(last, _)| *last >= v) {
                return Err(DbError::Migration(format!("version {v} out of order")));
            }
            out.push((v, String::new()));
        } else if let Some((_, sql)) = out.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    Ok(out)
}

/// Brings the database to the newest schema version; returns (from, to).
pub fn migrate(conn: &mut Connection) -> Result<(u32, u32), DbError> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut version = current;
    for (v, sql) in sections(SCHEMA_SQL)? {
        if v <= version {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(&sql)
            .map_err(|e| DbError::Migration(format!("schema version {v}: {e}")))?;
        tx.pragma_update(None, "user_version", v)?;
        tx.commit()?;
        version = v;
    }
    Ok((current, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        let (from, to) = migrate(&mut conn).unwrap();
        assert_eq!(from, 0);
        assert!(to >= 1);
        assert_eq!(migrate(&mut conn).unwrap(), (to, to));
    }
}
