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
//! Each row carries `rev`, from one sequence, so a standby can follow what
//! was written after what it has.
//!
//! One daemon leads: it holds the lease in `quench_leader`, renewed on a
//! heartbeat, and each takeover raises the row's `epoch`. Every commit
//! first checks, in its own transaction and with the row locked against a
//! takeover, that the epoch is still the writer's and its lease has not
//! run out; otherwise nothing of it lands. So a leader that was paused past
//! its lease, or cut off, can never write after another took over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio_postgres::Client;

/// The schema this binary writes. `MIGRATIONS[n]` takes a database from
/// version `n` to `n + 1`.
pub const SCHEMA_VERSION: i32 = 2;

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE quench_records (
        tree text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        rev bigint NOT NULL,
        PRIMARY KEY (tree, key)
    );
    CREATE INDEX quench_records_rev ON quench_records (rev);
    CREATE SEQUENCE quench_rev;",
    // 2: the leader's lease and the fencing epoch.
    "CREATE TABLE quench_leader (
        id integer PRIMARY KEY CHECK (id = 1),
        epoch bigint NOT NULL,
        holder text NOT NULL,
        lease_until timestamptz NOT NULL
    );
    INSERT INTO quench_leader VALUES (1, 0, '', '-infinity');",
];

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
    #[error("the PostgreSQL store at {place} did not prove who it is: {why}")]
    Untrusted { place: String, why: String },
    #[error("the PostgreSQL store at {place} has schema version {found}, newer than this quench's ({SCHEMA_VERSION}); run a newer quench, or give this one another database")]
    Newer { place: String, found: i32 },
    #[error("the PostgreSQL store at {place} is led by {holder}, whose lease has not run out; stop it, or go through it with --server URL")]
    Held { place: String, holder: String },
    #[error("this daemon no longer leads the PostgreSQL store at {place} (another took over, or its lease ran out); nothing of this write was kept")]
    Fenced { place: String },
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
    /// The epoch this process leads with; 0 while it is a standby.
    epoch: AtomicI64,
    /// The highest `rev` this process has read.
    seen: AtomicI64,
}

/// Who leads a shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub holder: String,
    pub epoch: i64,
    /// Whether its lease still runs, by the database's clock.
    pub live: bool,
}

/// `host:port/dbname` from a PostgreSQL URL, without user or password.
pub fn place(url: &str) -> Result<String, SharedError> {
    place_of(&super::tls::split(url)?.url)
}

/// `place` of a URL whose TLS options are taken out already.
fn place_of(url: &str) -> Result<String, SharedError> {
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
        let parts = super::tls::split(url)?;
        let place = place_of(&parts.url)?;
        let tls = super::tls::connector(&parts.roots, &place)?;
        let (client, connection) = tokio_postgres::connect(&parts.url, tls)
            .await
            .map_err(|e| match super::tls::untrusted(&e) {
                Some(u) => SharedError::Untrusted {
                    place: place.clone(),
                    why: u.to_string(),
                },
                None => SharedError::Connect {
                    place: place.clone(),
                    why: said(&e, url),
                },
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
            epoch: AtomicI64::new(0),
            seen: AtomicI64::new(0),
        };
        shared.migrate().await?;
        Ok(shared)
    }

    pub fn place(&self) -> &str {
        &self.place
    }

    /// The epoch this process leads with, if it leads.
    pub fn epoch(&self) -> Option<i64> {
        Some(self.epoch.load(Ordering::SeqCst)).filter(|e| *e > 0)
    }

    /// Takes the lease for `ttl` if it is free (run out), or already
    /// `holder`'s (the same daemon, restarted): the epoch goes up either
    /// way, so whatever still runs under the old one is fenced off. Returns
    /// the new epoch, or `None` while another's lease runs.
    pub async fn lead(&self, holder: &str, ttl: Duration) -> Result<Option<i64>, SharedError> {
        let ms = ttl.as_millis() as f64;
        let client = self.client.lock().await;
        // A commit of the old leader holds the row: wait for it a little,
        // not for ever (a paused one is cut off by the session timeout).
        client
            .batch_execute(&format!(
                "SET lock_timeout = '1s'; SET idle_in_transaction_session_timeout = '{}ms'",
                ttl.as_millis().max(1000)
            ))
            .await
            .map_err(|e| self.query_err(e))?;
        let row = client
            .query_opt(
                "UPDATE quench_leader
                 SET epoch = epoch + 1, holder = $1,
                     lease_until = now() + $2 * interval '1 millisecond'
                 WHERE id = 1 AND (lease_until < now() OR holder = $1)
                 RETURNING epoch",
                &[&holder, &ms],
            )
            .await;
        let row = match row {
            Ok(r) => r,
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                None
            }
            Err(e) => return Err(self.query_err(e)),
        };
        let epoch: Option<i64> = row.map(|r| r.get(0));
        if let Some(e) = epoch {
            self.epoch.store(e, Ordering::SeqCst);
        }
        Ok(epoch)
    }

    /// Extends this process's lease by `ttl`; `false` once another holds
    /// the store (the epoch moved on), and this process no longer writes.
    pub async fn renew(&self, ttl: Duration) -> Result<bool, SharedError> {
        let Some(epoch) = self.epoch() else {
            return Ok(false);
        };
        let ms = ttl.as_millis() as f64;
        let client = self.client.lock().await;
        let n = client
            .execute(
                "UPDATE quench_leader SET lease_until = now() + $2 * interval '1 millisecond'
                 WHERE id = 1 AND epoch = $1",
                &[&epoch, &ms],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        if n == 0 {
            self.epoch.store(0, Ordering::SeqCst);
        }
        Ok(n == 1)
    }

    /// Gives the lease up (a clean stop), so a standby takes over at once.
    pub async fn release(&self) -> Result<(), SharedError> {
        let epoch = self.epoch.swap(0, Ordering::SeqCst);
        if epoch == 0 {
            return Ok(());
        }
        let client = self.client.lock().await;
        client
            .execute(
                "UPDATE quench_leader SET lease_until = '-infinity' WHERE id = 1 AND epoch = $1",
                &[&epoch],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        Ok(())
    }

    /// Stops writing: this process is deposed (or steps down), whatever
    /// the database says.
    pub fn resign(&self) {
        self.epoch.store(0, Ordering::SeqCst);
    }

    /// Who leads, as the database has it.
    pub async fn leader(&self) -> Result<Leader, SharedError> {
        let client = self.client.lock().await;
        let r = client
            .query_one(
                "SELECT holder, epoch, lease_until > now() FROM quench_leader WHERE id = 1",
                &[],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        Ok(Leader {
            holder: r.get(0),
            epoch: r.get(1),
            live: r.get(2),
        })
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
        let Some(epoch) = self.epoch() else {
            return Err(SharedError::Fenced {
                place: self.place.clone(),
            });
        };
        let mut client = self.client.lock().await;
        let tx = client.transaction().await.map_err(|e| self.query_err(e))?;
        // The fence: the row stays locked until this commits, so a
        // takeover waits for it, and a commit after a takeover finds the
        // epoch moved on and keeps nothing.
        let leads = tx
            .query_opt(
                "SELECT 1 FROM quench_leader WHERE id = 1 AND epoch = $1 AND lease_until > now() FOR SHARE",
                &[&epoch],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        if leads.is_none() {
            self.epoch.store(0, Ordering::SeqCst);
            return Err(SharedError::Fenced {
                place: self.place.clone(),
            });
        }
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

    /// Every record written since the last call (at first, all of them),
    /// oldest write first, in pages (a large store is not held twice in
    /// memory). A standby calls it on a timer; a new leader once more,
    /// after its takeover, for the old leader's last commits.
    pub async fn load(
        &self,
        mut each: impl FnMut(&str, &[u8], &[u8]) -> Result<(), sled::Error>,
    ) -> Result<u64, SharedError> {
        const PAGE: i64 = 5_000;
        let client = self.client.lock().await;
        let (mut after, mut count) = (self.seen.load(Ordering::SeqCst), 0u64);
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
                self.seen.store(after, Ordering::SeqCst);
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
    let config: tokio_postgres::Config = super::tls::split(url).ok()?.url.parse().ok()?;
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
