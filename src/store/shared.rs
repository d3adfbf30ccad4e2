//! PostgreSQL as the shared store (`store: {backend: postgres}`).
//!
//! The database holds the same records the embedded store does, one row
//! per record: `(tree, key) -> value`, the value's bytes exactly as sled
//! would keep them, so the audit chain (a hash over those bytes) verifies
//! on either backend and `store migrate` copies rows, not meanings.
//!
//! A daemon on PostgreSQL keeps a copy of the rows in a temporary sled
//! database and reads from it; every write is applied there and shipped to
//! PostgreSQL in the same group commit that the embedded store would
//! flush, and the commit returns only once PostgreSQL has committed it. So
//! the rule is the same on both backends (a transition is durable before
//! its effect starts), every read and transaction of `Store` is written
//! once, and a conformance suite can run the same operations on both.
//!
//! Each row carries `rev`, from one sequence, so a reader can follow what
//! was written after what it has.

use std::collections::HashMap;

use tokio_postgres::{Client, NoTls};

/// The schema this binary writes. `MIGRATIONS[n]` takes a database from
/// version `n` to `n + 1`.
pub const SCHEMA_VERSION: i32 = 1;

const MIGRATIONS: &[&str] = &["CREATE TABLE quench_records (
        tree text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        rev bigint NOT NULL,
        PRIMARY KEY (tree, key)
    );
    CREATE INDEX quench_records_rev ON quench_records (rev);
    CREATE SEQUENCE quench_rev;"];

/// Why the shared store cannot be used. It names the database by host,
/// port and name: never the URL, which may carry a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SharedError {
    #[error("{0}")]
    Url(String),
    #[error("cannot reach the PostgreSQL store at {place}: {why}; check that the database is up and that the URL names it")]
    Connect { place: String, why: String },
    #[error("the PostgreSQL store at {place}: {why}")]
    Query { place: String, why: String },
    #[error("the PostgreSQL store at {place} has schema version {found}, newer than this quench's ({SCHEMA_VERSION}); run a newer quench, or give this one another database")]
    Newer { place: String, found: i32 },
    #[error("another quench process holds the PostgreSQL store at {place} (one daemon drives a shared store); stop it, or go through it with --server URL")]
    Held { place: String },
    #[error("migrating the PostgreSQL store at {place} to schema version {to} failed, and it was left at version {from}: {why}")]
    Migration {
        place: String,
        from: i32,
        to: i32,
        why: String,
    },
}

/// One record written: which tree, its key, its bytes.
#[derive(Debug, Clone)]
pub struct Write {
    pub tree: &'static str,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

pub struct Shared {
    /// Writes are serialised by the store's gate; the lock only lends the
    /// client to the one writer (a transaction needs it exclusively).
    client: tokio::sync::Mutex<Client>,
    place: String,
}

/// `host:port/dbname` from a PostgreSQL URL, without user or password.
pub fn place(url: &str) -> Result<String, SharedError> {
    let config: tokio_postgres::Config = url.parse().map_err(|_| {
        SharedError::Url(
            "the store's URL is not a PostgreSQL URL: write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
        )
    })?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    Ok(format!("{host}:{port}/{db}"))
}

impl Shared {
    /// Connects and brings the schema up to this binary's version.
    pub async fn connect(url: &str) -> Result<Shared, SharedError> {
        let place = place(url)?;
        let (client, connection) =
            tokio_postgres::connect(url, NoTls)
                .await
                .map_err(|e| SharedError::Connect {
                    place: place.clone(),
                    why: said(&e, url),
                })?;
        let conn_place = place.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // The next write fails too and says so to its writer; this
                // is for whoever reads the log.
                tracing::error!(store = %conn_place, error = %e, "lost the connection to the PostgreSQL store");
            }
        });
        let mut shared = Shared {
            client: tokio::sync::Mutex::new(client),
            place,
        };
        shared.migrate().await?;
        shared.hold().await?;
        Ok(shared)
    }

    pub fn place(&self) -> &str {
        &self.place
    }

    /// Takes the store's session lock, held as long as this connection
    /// lives: one process writes a shared store at a time, as one holds an
    /// embedded one. It waits a while for a holder that is going away (a
    /// process just stopped, whose connection the server has not yet
    /// closed).
    async fn hold(&mut self) -> Result<(), SharedError> {
        /// "quench" in ASCII: the key of the store's advisory lock.
        const LOCK: i64 = 0x7175_656e_6368;
        let place = self.place.clone();
        let client = self.client.get_mut();
        let q = |e: tokio_postgres::Error| SharedError::Query {
            place: place.clone(),
            why: said(&e, ""),
        };
        client
            .batch_execute("SET lock_timeout = '10s'")
            .await
            .map_err(q)?;
        let taken = client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
            .await;
        client
            .batch_execute("RESET lock_timeout")
            .await
            .map_err(q)?;
        match taken {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Err(SharedError::Held { place })
            }
            Err(e) => Err(q(e)),
        }
    }

    fn query_err(&self, e: tokio_postgres::Error) -> SharedError {
        SharedError::Query {
            place: self.place.clone(),
            why: said(&e, ""),
        }
    }

    /// Runs the migrations this database has not had, in one transaction
    /// that holds the schema table: two daemons starting at once migrate
    /// once, and a migration that fails leaves the schema as it was.
    async fn migrate(&mut self) -> Result<(), SharedError> {
        let place = self.place.clone();
        let client = self.client.get_mut();
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS quench_schema (version integer NOT NULL)")
            .await
            .map_err(|e| SharedError::Query {
                place: place.clone(),
                why: said(&e, ""),
            })?;
        let tx = client.transaction().await.map_err(|e| SharedError::Query {
            place: place.clone(),
            why: said(&e, ""),
        })?;
        let found: i32 = async {
            tx.batch_execute("LOCK TABLE quench_schema IN EXCLUSIVE MODE")
                .await?;
            let row = tx
                .query_opt("SELECT version FROM quench_schema", &[])
                .await?;
            Ok::<_, tokio_postgres::Error>(row.map(|r| r.get(0)).unwrap_or(0))
        }
        .await
        .map_err(|e| SharedError::Query {
            place: place.clone(),
            why: said(&e, ""),
        })?;
        if found > SCHEMA_VERSION {
            return Err(SharedError::Newer { place, found });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let failed = |e: tokio_postgres::Error| SharedError::Migration {
            place: place.clone(),
            from: found,
            to: SCHEMA_VERSION,
            why: said(&e, ""),
        };
        for sql in &MIGRATIONS[found as usize..] {
            tx.batch_execute(sql).await.map_err(failed)?;
        }
        tx.execute("DELETE FROM quench_schema", &[])
            .await
            .map_err(failed)?;
        tx.execute(
            "INSERT INTO quench_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(store = %self.place, from = found, to = SCHEMA_VERSION, "migrated the PostgreSQL store's schema");
        Ok(())
    }

    /// Commits `writes` in one transaction (a later write of a record
    /// replaces an earlier one). The batch becomes visible at once, so the
    /// order of `rev` within it does not matter.
    pub async fn ship(&self, writes: Vec<Write>) -> Result<(), SharedError> {
        if writes.is_empty() {
            return Ok(());
        }
        // One statement for the batch; PostgreSQL refuses to update a row
        // twice in one INSERT ... ON CONFLICT, so only the last write of
        // each record goes.
        let mut last: HashMap<(&'static str, &[u8]), usize> = HashMap::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            last.insert((w.tree, w.key.as_slice()), i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_unstable();
        let mut client = self.client.lock().await;
        let tx = client.transaction().await.map_err(|e| self.query_err(e))?;
        // A migration ships a whole store at once: in statements of a
        // bounded size, still one transaction.
        for chunk in order.chunks(5_000) {
            let trees: Vec<&str> = chunk.iter().map(|&i| writes[i].tree).collect();
            let keys: Vec<&[u8]> = chunk.iter().map(|&i| writes[i].key.as_slice()).collect();
            let values: Vec<&[u8]> = chunk.iter().map(|&i| writes[i].value.as_slice()).collect();
            tx.execute(
                "INSERT INTO quench_records (tree, key, value, rev)
                 SELECT t, k, v, nextval('quench_rev')
                 FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS w(t, k, v)
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value, rev = EXCLUDED.rev",
                &[&trees, &keys, &values],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        }
        tx.commit().await.map_err(|e| self.query_err(e))
    }

    /// Every record, oldest write first, in pages (a large store is not
    /// held twice in memory).
    pub async fn load(
        &self,
        mut each: impl FnMut(&str, &[u8], &[u8]) -> Result<(), sled::Error>,
    ) -> Result<u64, SharedError> {
        const PAGE: i64 = 5_000;
        let client = self.client.lock().await;
        let (mut after, mut count) = (0i64, 0u64);
        loop {
            let rows = client
                .query(
                    "SELECT tree, key, value, rev FROM quench_records WHERE rev > $1 ORDER BY rev LIMIT $2",
                    &[&after, &PAGE],
                )
                .await
                .map_err(|e| self.query_err(e))?;
            for r in &rows {
                let (tree, key, value): (&str, &[u8], &[u8]) = (r.get(0), r.get(1), r.get(2));
                each(tree, key, value).map_err(|e| SharedError::Query {
                    place: self.place.clone(),
                    why: format!("could not keep a record it read: {e}"),
                })?;
                after = r.get(3);
                count += 1;
            }
            if (rows.len() as i64) < PAGE {
                return Ok(count);
            }
        }
    }

    /// How many records the database holds.
    pub async fn count(&self) -> Result<i64, SharedError> {
        let client = self.client.lock().await;
        let row = client
            .query_one("SELECT count(*) FROM quench_records", &[])
            .await
            .map_err(|e| self.query_err(e))?;
        Ok(row.get(0))
    }
}

/// The driver's message, with its cause, and never the URL's password.
fn said(e: &tokio_postgres::Error, url: &str) -> String {
    let mut text = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut t = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                t = format!("{t}: {s}");
                src = s.source();
            }
            t
        }
    };
    if let Some(pw) = password(url) {
        text = text.replace(&pw, "[redacted]");
    }
    text
}

fn password(url: &str) -> Option<String> {
    let config: tokio_postgres::Config = url.parse().ok()?;
    let pw = config.get_password()?;
    let pw = String::from_utf8_lossy(pw).into_owned();
    (!pw.is_empty()).then_some(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_names_host_port_and_database_but_never_the_password() {
        let p = place("postgres://quench:s3cret-pw@db.internal:5433/incidents").unwrap();
        assert_eq!(p, "db.internal:5433/incidents");
        assert!(!p.contains("s3cret"));
        let e = place("mysql//nope").unwrap_err().to_string();
        assert!(
            e.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
            "{e}"
        );
    }

    #[test]
    fn the_migrations_reach_this_binarys_schema() {
        assert_eq!(MIGRATIONS.len() as i32, SCHEMA_VERSION);
    }
}
