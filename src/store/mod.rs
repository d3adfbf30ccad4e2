//! The embedded store (sled): incidents, step and item runs, the timeline,
//! notice drafts.
//!
//! Every write that announces an effect is flushed before it returns, so an
//! acknowledged transition survives `kill -9` (sled alone would lose up to
//! half a second of writes). A state change and the timeline event that
//! records it are written in one transaction, so neither exists without the
//! other. One process owns a database at a time (sled locks it).
//!
//! Writes go through one gate, and no transaction ever overlaps a flush:
//! sled 0.34 deadlocks when a multi-tree transaction (which takes its
//! global lock exclusively) is queued while flushes hold it shared and wait
//! on IO threads that need it too; seen here as a drill that hung one run
//! in four. Commits are grouped: writers apply their transactions one after
//! another, then one of them flushes for all that applied before it, and
//! each returns only once a flush covers its write.

mod apart;
pub mod audit;
mod kind;
pub mod model;
pub mod shared;
pub mod tls;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

pub use audit::AuditReport;
pub use kind::EventKind;
pub use model::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another quench process; if it is `quench serve`, go through it (`quench declare --server URL`, the REST API, the /incidents pages, Slack), otherwise stop it or pick another store with --data-dir")]
    Locked { path: String },
    #[error("the store at {path} cannot be used: {what}; {fix}")]
    Unusable {
        path: String,
        what: String,
        fix: &'static str,
    },
    #[error("{}", describe(.0))]
    Sled(#[from] sled::Error),
    #[error("store: corrupt record {key}: {err}")]
    Corrupt { key: String, err: serde_json::Error },
    #[error(
        "store: record {key} keeps its output apart, and that output is missing; {CORRUPT_FIX}"
    )]
    MissingOutput { key: String },
    #[error("no incident \"{0}\"; `quench incidents` lists them")]
    NoIncident(String),
    #[error(transparent)]
    Shared(#[from] shared::SharedError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// sled's page cache, for the embedded store and the shared one's copy.
const CACHE: u64 = 32 << 20;

/// How many scheduler turns an item batch waits for more writes, and the
/// size at which it stops waiting.
const GATHER_TURNS: usize = 8;
const GATHER_MOST: usize = 256;

const CORRUPT_FIX: &str = "restore it from a backup, or move it aside to start with an empty store (its incidents are then not available)";

/// sled's own words, with what they mean for the data dir.
fn describe(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => format!(
            "the store's data is corrupted ({e}); restore the data dir from a backup, or move it aside to start with an empty store"
        ),
        sled::Error::Io(io) => format!("the store cannot read or write its files: {io}"),
        other => other.to_string(),
    }
}

impl StoreError {
    /// Whether this is the store's files failing (disk full, read-only,
    /// corrupted), not a record or a request.
    fn is_fault(&self) -> bool {
        matches!(
            self,
            StoreError::Sled(sled::Error::Io(_) | sled::Error::Corruption { .. })
                | StoreError::Unusable { .. }
        ) || self.is_unreachable()
    }

    /// Whether the shared store could not be reached or stopped answering
    /// (down, restarting, a network cut), which waiting may cure; not a
    /// refusal that would come back the same (a newer schema, a bad URL).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            StoreError::Shared(
                shared::SharedError::Connect { .. } | shared::SharedError::Query { .. }
            )
        )
    }

    /// The same failure, for each writer of a batch that failed.
    fn again(&self) -> StoreError {
        match self {
            StoreError::Sled(e) => StoreError::Sled(e.clone()),
            StoreError::Unusable { path, what, fix } => StoreError::Unusable {
                path: path.clone(),
                what: what.clone(),
                fix,
            },
            StoreError::Shared(e) => StoreError::Shared(e.clone()),
            other => StoreError::Sled(sled::Error::Unsupported(other.to_string())),
        }
    }

    /// `opening`, where another process holding the files is `Locked`.
    fn opening_held(dir: &Path, e: sled::Error) -> StoreError {
        match e {
            // sled wraps the failed flock in its own io::Error text.
            sled::Error::Io(ref io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: dir.display().to_string(),
                }
            }
            other => StoreError::opening(dir, other),
        }
    }

    /// An open that failed, said with the data dir and what to do.
    fn opening(dir: &Path, e: sled::Error) -> StoreError {
        let path = dir.display().to_string();
        match e {
            sled::Error::Corruption { .. } => StoreError::Unusable {
                path,
                what: "its data is corrupted (sled found a record it cannot read back)".into(),
                fix: CORRUPT_FIX,
            },
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied
                || io.raw_os_error() == Some(libc::EROFS) =>
            {
                StoreError::Unusable {
                    path,
                    what: format!("it cannot be written ({io})"),
                    fix: "give the user running quench write access to it, or pick another with --data-dir or `data_dir:`",
                }
            }
            sled::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => StoreError::Unusable {
                path,
                what: format!("the disk is full ({io})"),
                fix: "free space on its disk and start quench again",
            },
            other => StoreError::Unusable {
                path,
                what: describe(&other),
                fix: "check the data dir and its disk",
            },
        }
    }
}

/// An item write waiting for the next batch.
struct QueuedItem {
    key: Vec<u8>,
    run: Vec<u8>,
    /// The output kept apart, when it is (`apart`).
    output: Option<Vec<u8>>,
    incident: String,
    at: DateTime<Utc>,
    ev: Option<NewEvent>,
    done: tokio::sync::oneshot::Sender<Result<Option<TimelineEvent>>>,
}

/// Group-commit counters: writes applied, and how many a flush covers.
#[derive(Debug, Default)]
struct Commits {
    applied: u64,
    flushed: u64,
}

/// How long a shared store's lease runs unless the config says otherwise.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// The trees, by the names their records carry on the shared store.
const INCIDENTS: &str = "incidents";
const STEPS: &str = "steps";
const ITEMS: &str = "items";
const EVENTS: &str = "events";
const NOTICES: &str = "notices";
const META: &str = "meta";
const SIMULATED: &str = "simulated";
const PLANS: &str = "plans";
/// Step and item outputs kept apart from their runs (`apart`), under the
/// run's own key.
const OUTPUTS: &str = "outputs";

/// The layout of the records, in `meta` under [`FORMAT_KEY`] once a store
/// holds what an older quench would misread: 2 keeps long outputs apart.
/// A store without it is format 1. A quench refuses a newer one at open.
const FORMAT: u32 = 2;
const FORMAT_KEY: &[u8] = b"store_format";

/// What one transaction wrote, for the shared store to ship with the next
/// commit. It keeps nothing when the store is not shared.
struct Rec {
    on: bool,
    writes: std::cell::RefCell<Vec<shared::Write>>,
}

impl Rec {
    /// sled may run a transaction's closure again (a conflict): each run
    /// starts with nothing noted.
    fn restart(&self) {
        self.writes.borrow_mut().clear();
    }

    fn put(
        &self,
        t: &TransactionalTree,
        tree: &'static str,
        key: &[u8],
        value: &[u8],
    ) -> TxResult<()> {
        t.insert(key, value)?;
        if self.on {
            self.writes.borrow_mut().push(shared::Write {
                tree,
                key: key.to_vec(),
                value: value.to_vec(),
            });
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    gate: std::sync::Arc<tokio::sync::Mutex<Commits>>,
    /// Item writes waiting for the next batch (see `put_item`).
    queued: std::sync::Arc<std::sync::Mutex<Vec<QueuedItem>>>,
    /// A task is on its way to apply the queued writes.
    applying: std::sync::Arc<std::sync::atomic::AtomicBool>,
    incidents: sled::Tree,
    steps: sled::Tree,
    items: sled::Tree,
    events: sled::Tree,
    notices: sled::Tree,
    meta: sled::Tree,
    /// Simulated platforms' state per drill (drill, integration).
    simulated: sled::Tree,
    /// Plans: what a read-only run found, by plan id.
    plans: sled::Tree,
    outputs: sled::Tree,
    /// A scratch store (a plan's working state) is never flushed: it is
    /// thrown away, and a plan that stops is simply run again.
    scratch: bool,
    /// The data dir, for messages.
    path: std::sync::Arc<str>,
    /// PostgreSQL, when it is the store: sled is then this process's copy,
    /// and a commit is durable once PostgreSQL has it.
    shared: Option<std::sync::Arc<shared::Shared>>,
    /// Writes applied here and not yet shipped to `shared`.
    pending: std::sync::Arc<std::sync::Mutex<Vec<shared::Write>>>,
    /// Set when the files fail (a write or flush refused: disk full,
    /// read-only, corrupted): sled does not recover from that in-process.
    fault: std::sync::Arc<Fault>,
}

#[derive(Default)]
struct Fault {
    what: std::sync::Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\u{0}").into_bytes()
}

fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store records always serialize")
}

impl Store {
    /// A step's or item's run as stored, with its output rejoined when it
    /// is kept apart.
    fn dec_run<R: apart::Run>(&self, k: &[u8], v: &[u8]) -> Result<R> {
        let mut run: R = dec(k, v)?;
        if run.is_marked() {
            run.rejoin(dec(k, &self.output_apart(k)?)?);
        }
        Ok(run)
    }

    /// The output kept apart for the run stored under `k`.
    fn output_apart(&self, k: &[u8]) -> Result<sled::IVec> {
        self.outputs
            .get(k)?
            .ok_or_else(|| StoreError::MissingOutput {
                key: String::from_utf8_lossy(k).replace('\u{0}', "/"),
            })
    }
}

fn dec<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(k).replace('\u{0}', "/"),
        err,
    })
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// Appends an event inside a transaction, numbering it after the last one.
fn append_event(
    events: &TransactionalTree,
    meta: &TransactionalTree,
    rec: &Rec,
    incident: &str,
    at: DateTime<Utc>,
    ev: &NewEvent,
) -> TxResult<TimelineEvent> {
    let seq_key = key(&["seq", incident]);
    let seq = meta
        .get(&seq_key)?
        .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
        + 1;
    rec.put(meta, META, &seq_key, &seq.to_be_bytes())?;
    let te = TimelineEvent {
        seq,
        at,
        kind: ev.kind.name().to_string(),
        step: ev.step.clone(),
        item: ev.item,
        actor: ev.actor.clone(),
        message: ev.message.clone(),
        data: ev.data.clone(),
    };
    let bytes = enc(&te);
    // The audit chain: each event's hash covers the one before it and the
    // exact bytes stored, so editing or removing a recorded event shows.
    let head_key = key(&["audit-head", incident]);
    let prev = meta
        .get(&head_key)?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    let hash = audit::link(&prev, &bytes);
    rec.put(
        meta,
        META,
        &key(&["audit", incident, &format!("{seq:012}")]),
        hash.as_bytes(),
    )?;
    rec.put(meta, META, &head_key, hash.as_bytes())?;
    rec.put(
        events,
        EVENTS,
        &key(&[incident, &format!("{seq:012}")]),
        &bytes,
    )?;
    Ok(te)
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::opening(dir, sled::Error::Io(e)))?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE)
            // Every acknowledged write is flushed explicitly (see the gate);
            // the background flusher would race the gate into sled's deadlock.
            .flush_every_ms(None);
        // sled panics on some corruptions while it recovers its log; that
        // is a corrupted store to report, not a crash.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
        let opened = match opened {
            Ok(r) => r,
            Err(p) => {
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(StoreError::Unusable {
                    path: dir.display().to_string(),
                    what: format!("its data is corrupted (sled could not recover its log: {why})"),
                    fix: CORRUPT_FIX,
                });
            }
        };
        let db = opened.map_err(|e| StoreError::opening_held(dir, e))?;
        let store = Self::with_db(db, false, &dir.display().to_string()).map_err(|e| match e {
            StoreError::Sled(s) => StoreError::opening(dir, s),
            other => other,
        })?;
        store.readable_format()?;
        Ok(store)
    }

    /// Refuses a store written in a layout newer than this quench reads,
    /// which it would misread rather than fail on (an output kept apart
    /// looks like no output to a reader that does not know `outputs`).
    fn readable_format(&self) -> Result<()> {
        let Some(v) = self.meta.get(FORMAT_KEY)? else {
            return Ok(());
        };
        let found = std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        match found {
            Some(n) if n <= FORMAT => Ok(()),
            _ => Err(StoreError::Unusable {
                path: self.path.to_string(),
                what: format!(
                    "it was written by a newer quench (store format {}; this one reads up to {FORMAT})",
                    String::from_utf8_lossy(&v)
                ),
                fix: "run that quench, or a newer one, on it; this one would misread what it holds",
            }),
        }
    }

    /// A store in a temporary file that disappears when the last handle
    /// goes: a plan's working state.
    pub fn scratch() -> Result<Store> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()?;
        Self::with_db(db, true, "a temporary store")
    }

    fn with_db(db: sled::Db, scratch: bool, path: &str) -> Result<Store> {
        Ok(Store {
            incidents: db.open_tree(INCIDENTS)?,
            steps: db.open_tree(STEPS)?,
            items: db.open_tree(ITEMS)?,
            events: db.open_tree(EVENTS)?,
            notices: db.open_tree(NOTICES)?,
            meta: db.open_tree(META)?,
            simulated: db.open_tree(SIMULATED)?,
            plans: db.open_tree(PLANS)?,
            outputs: db.open_tree(OUTPUTS)?,
            scratch,
            db,
            gate: Default::default(),
            queued: Default::default(),
            applying: Default::default(),
            path: path.into(),
            fault: Default::default(),
            shared: None,
            pending: Default::default(),
        })
    }

    /// The store on PostgreSQL at `url`: connects, brings the schema up to
    /// date, and reads every record into this process's copy, which is
    /// kept in `copy` (made afresh: a daemon's data dir), or in a temporary
    /// file when `None` (a migration, a test).
    pub async fn open_shared(url: &str, copy: Option<&Path>) -> Result<Store> {
        let sh = shared::Shared::connect(url).await?;
        // The copy is bounded like the embedded store: sled's default
        // cache is 1 GiB, which a large store's copy would come to hold.
        let config = sled::Config::new()
            .cache_capacity(CACHE)
            .flush_every_ms(None);
        let db = match copy {
            // Whatever a killed process left there is stale by definition.
            Some(dir) => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .map_err(|e| StoreError::opening(dir, sled::Error::Io(e)))?;
                }
                config
                    .path(dir)
                    .open()
                    .map_err(|e| StoreError::opening_held(dir, e))?
            }
            None => config.temporary(true).open()?,
        };
        let mut store = Self::with_db(db, false, &format!("postgres://{}", sh.place()))?;
        let started = std::time::Instant::now();
        let place = sh.place().to_string();
        store.shared = Some(std::sync::Arc::new(sh));
        let n = store.follow().await?;
        store.readable_format()?;
        tracing::info!(store = %place, records = n, seconds = started.elapsed().as_secs_f64(), "read the PostgreSQL store");
        Ok(store)
    }

    /// The shared store as `holder`'s to write, taken at once (a migration,
    /// a test): refused while another's lease runs.
    pub async fn open_leading(url: &str, holder: &str) -> Result<Store> {
        let store = Self::open_shared(url, None).await?;
        if store.lead(holder, DEFAULT_LEASE).await?.is_none() {
            let sh = store.shared.as_ref().expect("shared");
            return Err(shared::SharedError::Held {
                place: sh.place().to_string(),
                holder: sh.leader().await?.holder,
            }
            .into());
        }
        Ok(store)
    }

    /// Whether the store is shared (PostgreSQL) rather than this process's.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether this process may write: always on the embedded store; on
    /// the shared one while it holds the lease.
    pub fn leads(&self) -> bool {
        self.shared.as_ref().is_none_or(|sh| sh.epoch().is_some())
    }

    /// The epoch this process leads the shared store with.
    pub fn epoch(&self) -> Option<i64> {
        self.shared.as_ref().and_then(|sh| sh.epoch())
    }

    /// Takes the shared store's lease for `holder` if it is free (see
    /// `Shared::lead`), then reads what the last leader wrote: once this
    /// returns `Some(epoch)` the copy is whole and this process writes.
    pub async fn lead(&self, holder: &str, ttl: std::time::Duration) -> Result<Option<i64>> {
        let Some(sh) = &self.shared else {
            return Ok(None);
        };
        let epoch = sh.lead(holder, ttl).await?;
        if epoch.is_some() {
            self.follow().await?;
        }
        Ok(epoch)
    }

    /// Extends the lease; `false` once this process no longer leads.
    pub async fn renew(&self, ttl: std::time::Duration) -> Result<bool> {
        match &self.shared {
            Some(sh) => Ok(sh.renew(ttl).await?),
            None => Ok(true),
        }
    }

    /// Gives the lease up, for a standby to take at once (a clean stop).
    pub async fn release(&self) -> Result<()> {
        match &self.shared {
            Some(sh) => Ok(sh.release().await?),
            None => Ok(()),
        }
    }

    /// Stops this process writing the shared store, at once.
    pub fn resign(&self) {
        if let Some(sh) = &self.shared {
            sh.resign();
        }
    }

    /// Who leads the shared store (`None` for the embedded one).
    pub async fn leader(&self) -> Option<Result<shared::Leader>> {
        match &self.shared {
            Some(sh) => Some(sh.leader().await.map_err(StoreError::from)),
            None => None,
        }
    }

    /// Reads into this process's copy what others wrote since it last
    /// looked (a standby's follow). Returns the records read.
    pub async fn follow(&self) -> Result<u64> {
        let Some(sh) = &self.shared else {
            return Ok(0);
        };
        Ok(sh
            .load(|tree, k, v| match self.tree(tree) {
                Some(t) => t.insert(k, v).map(|_| ()),
                None => Err(sled::Error::Unsupported(format!(
                    "a record of tree \"{tree}\", which this quench does not know"
                ))),
            })
            .await?)
    }

    /// A write on a shared store this process does not lead is refused
    /// before it touches the copy, which stays the database's.
    fn writable(&self) -> Result<()> {
        match &self.shared {
            Some(sh) if sh.epoch().is_none() => Err(shared::SharedError::Fenced {
                place: sh.place().to_string(),
            }
            .into()),
            _ => Ok(()),
        }
    }

    fn tree(&self, name: &str) -> Option<&sled::Tree> {
        Some(match name {
            INCIDENTS => &self.incidents,
            STEPS => &self.steps,
            ITEMS => &self.items,
            EVENTS => &self.events,
            NOTICES => &self.notices,
            META => &self.meta,
            SIMULATED => &self.simulated,
            PLANS => &self.plans,
            OUTPUTS => &self.outputs,
            _ => return None,
        })
    }

    /// Runs `tx`, a sled transaction that notes its writes in the `Rec` it
    /// is given, and keeps those writes for the next commit to ship.
    fn tx<T>(&self, tx: impl FnOnce(&Rec) -> Result<T>) -> Result<T> {
        let rec = Rec {
            on: self.shared.is_some(),
            writes: Default::default(),
        };
        let out = tx(&rec)?;
        if rec.on {
            self.note(rec.writes.into_inner());
        }
        Ok(out)
    }

    /// Keeps writes for the next commit to ship to the shared store.
    fn note(&self, writes: impl IntoIterator<Item = shared::Write>) {
        self.pending.lock().expect("pending writes").extend(writes);
    }

    /// One record written outside a transaction, noted for the shared store.
    fn put_plain(&self, tree: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        let t = self.tree(tree).expect("a known tree");
        t.insert(key, value)?;
        if self.shared.is_some() {
            self.note([shared::Write {
                tree,
                key: key.to_vec(),
                value: value.to_vec(),
            }]);
        }
        Ok(())
    }

    /// Every record of every tree, as stored: what `store migrate` copies.
    pub fn records(
        &self,
    ) -> impl Iterator<Item = Result<(&'static str, sled::IVec, sled::IVec)>> + '_ {
        [
            INCIDENTS, STEPS, ITEMS, EVENTS, NOTICES, META, SIMULATED, PLANS, OUTPUTS,
        ]
        .into_iter()
        .flat_map(move |name| {
            self.tree(name)
                .expect("a known tree")
                .iter()
                .map(move |r| r.map(|(k, v)| (name, k, v)).map_err(StoreError::from))
        })
    }

    /// Whether the store holds nothing yet (a migration's target must not).
    pub fn is_empty(&self) -> bool {
        [
            INCIDENTS, STEPS, ITEMS, EVENTS, NOTICES, META, SIMULATED, PLANS, OUTPUTS,
        ]
        .iter()
        .all(|n| self.tree(n).is_none_or(|t| t.is_empty()))
    }

    /// Copies `records` in as they are, in one commit: durable (and on the
    /// shared store, one transaction) when this returns.
    pub async fn import(
        &self,
        records: impl Iterator<Item = Result<(&'static str, sled::IVec, sled::IVec)>>,
    ) -> Result<u64> {
        let mut n = 0;
        self.commit(|| {
            for r in records {
                let (tree, k, v) = r?;
                self.put_plain(tree, &k, &v)?;
                n += 1;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// Remembers a failure of the store's files, for /healthz and for the
    /// daemon to stop on.
    fn noted<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_fault() {
                let mut what = self.fault.what.lock().expect("store fault");
                if what.is_none() {
                    *what = Some(e.to_string());
                    self.fault.notify.notify_waiters();
                }
            }
        }
        r
    }

    /// Why the store cannot be used, if it cannot: set by a failed write
    /// or flush, or found now by writing, flushing and reading back a
    /// probe record (what /healthz reports).
    pub async fn health(&self) -> std::result::Result<(), String> {
        if let Some(what) = self.fault() {
            return Err(what);
        }
        // A standby writes nothing: healthy is the database answering.
        if let (Some(sh), false) = (&self.shared, self.leads()) {
            return sh.leader().await.map(|_| ()).map_err(|e| e.to_string());
        }
        // Only a value to read back, never shown as a time.
        #[allow(clippy::disallowed_methods)]
        let stamp = chrono::Utc::now().timestamp_millis().to_be_bytes();
        let probe = self
            .commit(|| self.put_plain(META, b"health_probe", &stamp))
            .await
            .and_then(|()| Ok(self.meta.get("health_probe")?));
        match self.noted(probe) {
            Ok(Some(v)) if v.as_ref() == stamp => Ok(()),
            Ok(_) => Err(format!(
                "the store at {} did not read back what it wrote",
                self.path
            )),
            Err(e) => Err(format!("the store at {}: {e}", self.path)),
        }
    }

    /// The failure `health` would report without probing.
    pub fn fault(&self) -> Option<String> {
        self.fault
            .what
            .lock()
            .expect("store fault")
            .as_ref()
            .map(|w| format!("the store at {} failed: {w}", self.path))
    }

    /// Resolves once the store's files have failed.
    pub async fn faulted(&self) {
        loop {
            let notified = self.fault.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a fault between the two wakes it.
            notified.as_mut().enable();
            if self.fault().is_some() {
                return;
            }
            notified.await;
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Applies one write, then returns once a flush covers it: its own, or
    /// one another writer ran after it (group commit).
    async fn commit<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let r = self.commit_inner(write).await;
        self.noted(r)
    }

    async fn commit_inner<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let (out, mine) = {
            let mut g = self.gate.lock().await;
            self.writable()?;
            let out = write()?;
            g.applied += 1;
            (out, g.applied)
        };
        let mut g = self.gate.lock().await;
        if g.flushed < mine {
            self.flush_locked(&mut g).await?;
        }
        Ok(out)
    }

    /// Flushes every write applied so far. Called holding the gate, so no
    /// transaction can start during the flush.
    async fn flush_locked(&self, g: &mut Commits) -> Result<()> {
        if self.scratch {
            return Ok(());
        }
        let covers = g.applied;
        let started = std::time::Instant::now();
        match &self.shared {
            Some(sh) => {
                let writes = std::mem::take(&mut *self.pending.lock().expect("pending writes"));
                sh.ship(writes).await?;
            }
            None => {
                // sled 0.34's flush_async runs the flush as a job on sled's
                // own IO pool, whose log writes queue behind it: several
                // stores flushing at once can occupy every thread and wait
                // forever (spacejam/sled#1241, #1308, #1357; seen here as
                // two tests hung in CI). The blocking flush on tokio's
                // blocking pool leaves sled's threads free for its writes.
                let db = self.db.clone();
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| {
                        sled::Error::Io(std::io::Error::other(format!(
                            "the flush did not finish: {e}"
                        )))
                    })??;
            }
        }
        crate::telemetry::global().flush(started.elapsed(), covers - g.flushed);
        g.flushed = covers;
        Ok(())
    }

    /// Flushes everything written so far (shutdown; tests that read the files).
    pub async fn flush(&self) {
        let _ = self.commit(|| Ok(())).await;
    }

    /// Allocates the next incident id (`INC-20261201-0001`), human-sized
    /// and contiguous, unlike sled's generate_id which jumps after a restart.
    pub fn next_incident_id(&self, at: DateTime<Utc>) -> Result<String> {
        self.next_id("incident_counter", "INC", at)
    }

    /// Allocates the next plan id (`PLAN-20261201-0001`).
    pub fn next_plan_id(&self, at: DateTime<Utc>) -> Result<String> {
        self.next_id("plan_counter", "PLAN", at)
    }

    fn next_id(&self, counter: &str, prefix: &str, at: DateTime<Utc>) -> Result<String> {
        let n = self
            .meta
            .update_and_fetch(counter, |old| {
                let n = old
                    .map(|v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(1);
        if self.shared.is_some() {
            // Shipped with the commit that uses the id.
            self.note([shared::Write {
                tree: META,
                key: counter.as_bytes().to_vec(),
                value: n.to_be_bytes().to_vec(),
            }]);
        }
        Ok(format!("{prefix}-{}-{n:04}", at.format("%Y%m%d")))
    }

    /// Records a new incident and its first event, durably.
    pub async fn create_incident(&self, inc: &Incident, ev: NewEvent) -> Result<TimelineEvent> {
        self.commit(|| {
            self.tx(|rec| {
                (&self.incidents, &self.events, &self.meta)
                    .transaction(|(i, e, m)| {
                        rec.restart();
                        rec.put(i, INCIDENTS, inc.id.as_bytes(), &enc(inc))?;
                        append_event(e, m, rec, &inc.id, inc.declared_at, &ev)
                    })
                    .map_err(tx_err)
            })
        })
        .await
    }

    pub fn incident(&self, id: &str) -> Result<Incident> {
        match self.incidents.get(id.as_bytes())? {
            Some(v) => dec(id.as_bytes(), &v),
            None => Err(StoreError::NoIncident(id.to_string())),
        }
    }

    pub fn incidents(&self) -> Result<Vec<Incident>> {
        self.incidents
            .iter()
            .map(|r| {
                let (k, v) = r?;
                dec(&k, &v)
            })
            .collect()
    }

    /// Sets the incident's status and records why, durably.
    pub async fn set_incident_status(
        &self,
        id: &str,
        status: IncidentStatus,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent> {
        self.commit(|| {
            self.tx(|rec| {
                (&self.incidents, &self.events, &self.meta)
                    .transaction(|(i, e, m)| {
                        rec.restart();
                        let raw = i.get(id.as_bytes())?.ok_or_else(|| {
                            ConflictableTransactionError::Abort(StoreError::NoIncident(
                                id.to_string(),
                            ))
                        })?;
                        let mut inc: Incident = dec(id.as_bytes(), &raw)
                            .map_err(ConflictableTransactionError::Abort)?;
                        inc.status = status;
                        inc.finished_at = if status.is_open() { None } else { Some(at) };
                        rec.put(i, INCIDENTS, id.as_bytes(), &enc(&inc))?;
                        append_event(e, m, rec, id, at, &ev)
                    })
                    .map_err(tx_err)
            })
        })
        .await
    }

    pub fn step_runs(&self, incident: &str) -> Result<BTreeMap<String, StepRun>> {
        let p = prefix(&[incident]);
        let mut out = BTreeMap::new();
        for r in self.steps.scan_prefix(&p) {
            let (k, v) = r?;
            let step = String::from_utf8_lossy(&k[p.len()..]).into_owned();
            out.insert(step, self.dec_run(&k, &v)?);
        }
        Ok(out)
    }

    pub fn step_run(&self, incident: &str, step: &str) -> Result<StepRun> {
        let k = key(&[incident, step]);
        match self.steps.get(&k)? {
            Some(v) => self.dec_run(&k, &v),
            None => Ok(StepRun::default()),
        }
    }

    /// Writes a step's state with the event announcing it, durably.
    pub async fn put_step(
        &self,
        incident: &str,
        step: &str,
        run: &StepRun,
        at: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<TimelineEvent>> {
        let k = key(&[incident, step]);
        let (record, output) = apart::encode(run);
        let write =
            |rec: &Rec, s: &TransactionalTree, e: &TransactionalTree, m: &TransactionalTree| {
                rec.put(s, STEPS, &k, &record)?;
                events
                    .iter()
                    .map(|ev| append_event(e, m, rec, incident, at, ev))
                    .collect::<TxResult<Vec<_>>>()
            };
        self.commit(|| {
            self.tx(|rec| {
                // A transaction takes only the trees it writes: most step
                // writes have no output to keep apart. One that no longer
                // keeps it apart leaves the old one unread (it is unmarked).
                match &output {
                    None => (&self.steps, &self.events, &self.meta).transaction(|(s, e, m)| {
                        rec.restart();
                        write(rec, s, e, m)
                    }),
                    Some(out) => (&self.steps, &self.events, &self.meta, &self.outputs)
                        .transaction(|(s, e, m, o)| {
                            rec.restart();
                            rec.put(m, META, FORMAT_KEY, FORMAT.to_string().as_bytes())?;
                            rec.put(o, OUTPUTS, &k, out)?;
                            write(rec, s, e, m)
                        }),
                }
                .map_err(tx_err)
            })
        })
        .await
    }

    /// The digest of a step's item records as stored (`audit::items_digest`).
    pub fn items_digest(&self, incident: &str, step: &str) -> Result<String> {
        let mut digest = audit::ItemsDigest::default();
        self.digest_items(incident, step, &mut digest, 0, None)?;
        Ok(digest.finish())
    }

    /// Adds the step's item records from index `from` on (below `below`,
    /// when given) to `digest`, in index order: the digest of a whole step
    /// can be taken in parts, each part as its items finish.
    pub fn digest_items(
        &self,
        incident: &str,
        step: &str,
        digest: &mut audit::ItemsDigest,
        from: u32,
        below: Option<u32>,
    ) -> Result<()> {
        let p = prefix(&[incident, step]);
        // Indexes are written with 8 digits, so key order is index order.
        let at = |i: u32| [p.as_slice(), format!("{i:08}").as_bytes()].concat();
        let end = below.map(at);
        // From the start, every record under the prefix, whatever its key.
        let start = if from == 0 { p.clone() } else { at(from) };
        for r in self.items.range(start..) {
            let (k, v) = r?;
            if !k.starts_with(&p) || end.as_ref().is_some_and(|e| k.as_ref() >= e.as_slice()) {
                break;
            }
            let idx: u32 = String::from_utf8_lossy(&k[p.len()..]).parse().unwrap_or(0);
            if apart::is_marked(&v) {
                digest.add_apart(idx, &v, &self.output_apart(&k)?);
            } else {
                digest.add(idx, &v);
            }
        }
        Ok(())
    }

    pub fn item_runs(&self, incident: &str, step: &str) -> Result<BTreeMap<u32, ItemRun>> {
        let p = prefix(&[incident, step]);
        let mut out = BTreeMap::new();
        for r in self.items.scan_prefix(&p) {
            let (k, v) = r?;
            let idx: u32 = String::from_utf8_lossy(&k[p.len()..]).parse().unwrap_or(0);
            out.insert(idx, self.dec_run(&k, &v)?);
        }
        Ok(out)
    }

    /// Writes an item's state, with its event when it has one, durably.
    ///
    /// Item writes are batched: every item write queued when the gate comes
    /// free goes into one flush (and `apply_items` keeps sled's
    /// transactions to the writes that carry an event). A fan-out of 200
    /// items at once that gave each write a flush of its own spent its CPU
    /// there; see `bench table S20k`.
    pub async fn put_item(
        &self,
        incident: &str,
        step: &str,
        idx: u32,
        run: &ItemRun,
        at: DateTime<Utc>,
        ev: Option<NewEvent>,
    ) -> Result<Option<TimelineEvent>> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let (record, output) = apart::encode(run);
        self.queued.lock().expect("item queue").push(QueuedItem {
            key: key(&[incident, step, &format!("{idx:08}")]),
            run: record,
            output,
            incident: incident.to_string(),
            at,
            ev,
            done,
        });
        // In a task of its own: a caller that stops waiting cannot leave a
        // batch that carries other callers' writes half done. One such task
        // at a time: a write queued before it drains the queue rides along.
        if !self
            .applying
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let me = self.clone();
            tokio::spawn(async move { me.apply_queued().await });
        }
        let r = answer.await.unwrap_or_else(|_| {
            Err(StoreError::Sled(sled::Error::ReportableBug(
                "the store's item writer stopped before answering".into(),
            )))
        });
        self.noted(r)
    }

    /// Applies every queued item write (`apply_items`), flushes once, and
    /// answers each writer.
    async fn apply_queued(&self) {
        let mut g = self.gate.lock().await;
        // Under load, each turn of the scheduler brings more item writes
        // (calls returning); one flush then covers them all, and each flush
        // spared is a log write and sled's wake-ups. Alone, a write goes on
        // after one turn. No timer: the batch stops growing, or is large.
        let mut seen = self.queued.lock().expect("item queue").len();
        for _ in 0..GATHER_TURNS {
            tokio::task::yield_now().await;
            let now = self.queued.lock().expect("item queue").len();
            if now == seen || now >= GATHER_MOST {
                break;
            }
            seen = now;
        }
        // From here on a new write schedules the next batch itself.
        self.applying
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let batch = std::mem::take(&mut *self.queued.lock().expect("item queue"));
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.writable() {
            for q in batch {
                let _ = q.done.send(Err(e.again()));
            }
            return;
        }
        let applied = self.apply_items(&batch);
        let flushed = match applied {
            Ok(events) => {
                g.applied += batch.len() as u64;
                self.flush_locked(&mut g).await.map(|()| events)
            }
            Err(e) => Err(e),
        };
        match flushed {
            Ok(events) => {
                for (q, te) in batch.into_iter().zip(events) {
                    let _ = q.done.send(Ok(te));
                }
            }
            Err(e) => {
                for q in batch {
                    let _ = q.done.send(Err(e.again()));
                }
            }
        }
    }

    /// Writes a batch of item records, with their events: the answer holds
    /// each item's event as stored, in the batch's order.
    ///
    /// An item write without an event is one key, atomic on its own, so it
    /// goes in as a plain insert. A transaction is kept for the items that
    /// append an event (the event's sequence number and the item must land
    /// together): sled seals its IO buffer around every transaction, and
    /// in a fan-out, where most writes carry no event, that sealing was
    /// most of the store's cost (perf, `bench table S200k`).
    fn apply_items(&self, batch: &[QueuedItem]) -> Result<Vec<Option<TimelineEvent>>> {
        let mut out: Vec<Option<TimelineEvent>> = Vec::with_capacity(batch.len());
        for q in batch.iter().filter(|q| q.ev.is_none()) {
            // The output first: sled recovers a prefix of its log, so a
            // record that says its output is apart does not survive a crash
            // without it (and if it ever did, reads say so: MissingOutput).
            if let Some(out) = &q.output {
                self.put_plain(META, FORMAT_KEY, FORMAT.to_string().as_bytes())?;
                self.put_plain(OUTPUTS, &q.key, out)?;
            }
            self.put_plain(ITEMS, &q.key, &q.run)?;
        }
        let evented: Vec<&QueuedItem> = batch.iter().filter(|q| q.ev.is_some()).collect();
        let mut events = if evented.is_empty() {
            Vec::new()
        } else {
            let write = |rec: &Rec,
                         s: &TransactionalTree,
                         e: &TransactionalTree,
                         m: &TransactionalTree,
                         o: Option<&TransactionalTree>| {
                let mut out = Vec::with_capacity(evented.len());
                for q in &evented {
                    if let (Some(o), Some(output)) = (o, &q.output) {
                        rec.put(m, META, FORMAT_KEY, FORMAT.to_string().as_bytes())?;
                        rec.put(o, OUTPUTS, &q.key, output)?;
                    }
                    rec.put(s, ITEMS, &q.key, &q.run)?;
                    let ev = q.ev.as_ref().expect("filtered on an event");
                    out.push(append_event(e, m, rec, &q.incident, q.at, ev)?);
                }
                Ok(out)
            };
            self.tx(|rec| {
                if evented.iter().any(|q| q.output.is_some()) {
                    (&self.items, &self.events, &self.meta, &self.outputs).transaction(
                        |(s, e, m, o)| {
                            rec.restart();
                            write(rec, s, e, m, Some(o))
                        },
                    )
                } else {
                    (&self.items, &self.events, &self.meta).transaction(|(s, e, m)| {
                        rec.restart();
                        write(rec, s, e, m, None)
                    })
                }
                .map_err(tx_err)
            })?
        }
        .into_iter();
        for q in batch {
            out.push(match q.ev {
                Some(_) => events.next(),
                None => None,
            });
        }
        Ok(out)
    }

    /// Appends a timeline event on its own (notes, refused approvals).
    pub async fn append(
        &self,
        incident: &str,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent> {
        self.commit(|| {
            self.tx(|rec| {
                (&self.events, &self.meta)
                    .transaction(|(e, m)| {
                        rec.restart();
                        append_event(e, m, rec, incident, at, &ev)
                    })
                    .map_err(tx_err)
            })
        })
        .await
    }

    pub fn events(&self, incident: &str) -> Result<Vec<TimelineEvent>> {
        self.events
            .scan_prefix(prefix(&[incident]))
            .map(|r| {
                let (k, v) = r?;
                dec(&k, &v)
            })
            .collect()
    }

    /// The incident's events after sequence number `after`, in order: what
    /// a follower (Slack) has not handled yet, without reading the rest.
    pub fn events_after(&self, incident: &str, after: u64) -> Result<Vec<TimelineEvent>> {
        let start = key(&[incident, &format!("{:012}", after + 1)]);
        let mut end = key(&[incident]);
        end.push(1);
        self.events
            .range(start..end)
            .map(|r| {
                let (k, v) = r?;
                dec(&k, &v)
            })
            .collect()
    }

    /// Stores a new version of a notice draft; returns it and its event.
    pub async fn put_notice(
        &self,
        draft: NoticeDraft,
        ev: NewEvent,
    ) -> Result<(NoticeDraft, TimelineEvent)> {
        let j = draft.jurisdiction.clone().unwrap_or_else(|| "-".into());
        let p = prefix(&[&draft.incident, &draft.step, &draft.audience, &j]);
        let at = draft.drafted_at;
        let incident = draft.incident.clone();
        self.commit(|| {
            self.tx(|rec| {
            (&self.notices, &self.events, &self.meta)
            .transaction(|(n, e, m)| {
                rec.restart();
                // Versions count up from the latest stored one.
                let mut version = 1;
                while n.get([p.as_slice(), format!("{version:04}").as_bytes()].concat())?.is_some() {
                    version += 1;
                }
                let mut d = draft.clone();
                d.version = version;
                rec.put(n, NOTICES, &[p.as_slice(), format!("{version:04}").as_bytes()].concat(), &enc(&d))?;
                let mut ev = ev.clone();
                ev.data = serde_json::json!({"version": version, "jurisdiction": d.jurisdiction, "template": d.template, "audience": d.audience, "sha256": audit::sha256_hex(d.body.as_bytes())});
                let te = append_event(e, m, rec, &incident, at, &ev)?;
                Ok((d, te))
            })
            .map_err(tx_err)
            })
        })
        .await
    }

    /// Marks the latest version of each notice drafted by `steps` approved.
    pub async fn approve_notices(
        &self,
        incident: &str,
        steps: &[String],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<TimelineEvent>> {
        let mut latest: BTreeMap<(String, String, String), (Vec<u8>, NoticeDraft)> =
            BTreeMap::new();
        for r in self.notices.scan_prefix(prefix(&[incident])) {
            let (k, v) = r?;
            let d: NoticeDraft = dec(&k, &v)?;
            if !steps.contains(&d.step) {
                continue;
            }
            let slot = (
                d.step.clone(),
                d.audience.clone(),
                d.jurisdiction.clone().unwrap_or_default(),
            );
            if latest
                .get(&slot)
                .is_none_or(|(_, old)| old.version < d.version)
            {
                latest.insert(slot, (k.to_vec(), d));
            }
        }
        self.commit(|| {
            self.tx(|rec| {
            (&self.notices, &self.events, &self.meta)
                .transaction(|(n, e, m)| {
                    rec.restart();
                    let mut out = Vec::new();
                    for (k, d) in latest.values() {
                        let mut d = d.clone();
                        d.approved_by = Some(by.to_string());
                        d.approved_at = Some(at);
                        rec.put(n, NOTICES, k, &enc(&d))?;
                        let msg = format!(
                            "{} notice{} v{} approved by {by}: ready to send",
                            d.audience,
                            d.jurisdiction.as_deref().map(|j| format!(" for {j}")).unwrap_or_default(),
                            d.version
                        );
                        let ev = NewEvent::new(EventKind::NoticeApproved, by, msg)
                            .step(&d.step)
                            .data(serde_json::json!({"version": d.version, "jurisdiction": d.jurisdiction, "audience": d.audience}));
                        out.push(append_event(e, m, rec, incident, at, &ev)?);
                    }
                    Ok(out)
                })
                .map_err(tx_err)
            })
        })
        .await
    }

    pub fn notices(&self, incident: &str) -> Result<Vec<NoticeDraft>> {
        self.notices
            .scan_prefix(prefix(&[incident]))
            .map(|r| {
                let (k, v) = r?;
                dec(&k, &v)
            })
            .collect()
    }

    /// Small records beside the incident (e.g. which Slack thread is its
    /// channel); flushed like every other write.
    pub async fn put_meta(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let k = key(&["kv", name]);
        let v = enc(value);
        self.commit(|| self.put_plain(META, &k, &v)).await
    }

    pub fn meta(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let k = key(&["kv", name]);
        match self.meta.get(&k)? {
            Some(v) => Ok(Some(dec(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// What a drill's simulated platform holds, as the simulator last left
    /// it.
    pub fn simulated_platform(
        &self,
        drill: &str,
        integration: &str,
    ) -> Result<Option<serde_json::Value>> {
        let k = key(&[drill, integration]);
        match self.simulated.get(&k)? {
            Some(v) => Ok(Some(dec(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// Keeps a drill's simulated platform. Not flushed here: the simulator
    /// writes it before answering, and the engine's commit of the call's
    /// outcome, which comes after, flushes it with everything else.
    pub fn put_simulated_platform(
        &self,
        drill: &str,
        integration: &str,
        platform: &serde_json::Value,
    ) -> Result<()> {
        self.put_plain(SIMULATED, &key(&[drill, integration]), &enc(platform))
    }

    /// Keeps a plan's report (with its inputs and time), flushed.
    pub async fn put_plan(&self, id: &str, plan: &serde_json::Value) -> Result<()> {
        let k = key(&[id]);
        let v = enc(plan);
        self.commit(|| self.put_plain(PLANS, &k, &v)).await
    }

    pub fn plan(&self, id: &str) -> Result<Option<serde_json::Value>> {
        let k = key(&[id]);
        match self.plans.get(&k)? {
            Some(v) => Ok(Some(dec(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// Every stored plan, oldest first.
    pub fn plans(&self) -> Result<Vec<serde_json::Value>> {
        self.plans
            .iter()
            .map(|r| {
                let (k, v) = r?;
                dec(&k, &v)
            })
            .collect()
    }

    pub fn snapshot(&self, id: &str) -> Result<Snapshot> {
        Ok(Snapshot {
            incident: self.incident(id)?,
            steps: self.step_runs(id)?,
        })
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;
    use serde_json::Value as Json;

    /// A step's digest taken in parts, cut anywhere, is the digest of its
    /// records read at once; records of other steps never enter it.
    #[tokio::test]
    async fn a_digest_in_parts_is_the_digest_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let at = "2026-12-04T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for i in 0..30u32 {
            let run = ItemRun::pending(format!("key-{i}"));
            store
                .put_item("INC-1", "s", i, &run, at, None)
                .await
                .unwrap();
            store
                .put_item("INC-1", "s2", i, &run, at, None)
                .await
                .unwrap();
        }
        let whole = store.items_digest("INC-1", "s").unwrap();
        for cuts in [vec![], vec![0], vec![1, 2], vec![7, 19, 29], vec![30, 31]] {
            let mut d = audit::ItemsDigest::default();
            let mut from = 0;
            for &c in &cuts {
                store
                    .digest_items("INC-1", "s", &mut d, from, Some(c))
                    .unwrap();
                from = c;
            }
            store
                .digest_items("INC-1", "s", &mut d, from, None)
                .unwrap();
            assert_eq!(d.finish(), whole, "cut at {cuts:?}");
        }
        let mut only_s = audit::ItemsDigest::default();
        for i in 0..30u32 {
            only_s.add(i, &enc(&ItemRun::pending(format!("key-{i}"))));
        }
        assert_eq!(whole, only_s.finish());
    }

    /// An item's output kept apart is covered by its step's digest as if
    /// it were inline: an edit to it changes the digest, and a record whose
    /// output is gone is reported, not read as an empty output.
    #[tokio::test]
    async fn an_output_kept_apart_is_in_the_digest_and_missed_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let at = "2026-12-04T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let long: Json = (0..1_000)
            .map(|i| serde_json::json!({"id": format!("g{i}")}))
            .collect();
        let run = ItemRun {
            status: StepStatus::Succeeded,
            output: long.clone(),
            ..ItemRun::pending("key-0".into())
        };
        store
            .put_item("INC-1", "s", 0, &run, at, None)
            .await
            .unwrap();
        let k = key(&["INC-1", "s", "00000000"]);
        assert!(apart::is_marked(&store.items.get(&k).unwrap().unwrap()));
        assert_eq!(store.item_runs("INC-1", "s").unwrap()[&0].output, long);
        let whole = store.items_digest("INC-1", "s").unwrap();
        let mut by_hand = audit::ItemsDigest::default();
        by_hand.add_apart(0, &store.items.get(&k).unwrap().unwrap(), &enc(&long));
        assert_eq!(whole, by_hand.finish());

        let mut edited = long.clone();
        edited[999]["id"] = Json::String("someone-else".into());
        store.outputs.insert(&k, enc(&edited)).unwrap();
        assert_ne!(store.items_digest("INC-1", "s").unwrap(), whole);

        store.outputs.remove(&k).unwrap();
        for err in [
            store.items_digest("INC-1", "s").unwrap_err(),
            store.item_runs("INC-1", "s").unwrap_err(),
        ] {
            assert!(
                matches!(&err, StoreError::MissingOutput { key } if key == "INC-1/s/00000000"),
                "{err}"
            );
            assert!(
                err.to_string().contains("restore it from a backup"),
                "{err}"
            );
        }
    }

    /// A store that keeps an output apart says so, and a store in a newer
    /// layout than this quench reads is refused at open with what to do,
    /// not misread.
    #[tokio::test]
    async fn a_store_in_a_newer_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(
                store.meta.get(FORMAT_KEY).unwrap(),
                None,
                "nothing kept apart yet"
            );
            let long: Json = (0..1_000).map(|i| serde_json::json!({"id": i})).collect();
            let run = StepRun {
                output: long,
                ..StepRun::default()
            };
            let at = "2026-12-04T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
            store
                .put_step("INC-1", "list", &run, at, vec![])
                .await
                .unwrap();
            assert_eq!(
                store.meta.get(FORMAT_KEY).unwrap().as_deref(),
                Some(&b"2"[..])
            );
            store.meta.insert(FORMAT_KEY, b"3").unwrap();
            store.db.flush().unwrap();
        }
        // sled's threads let go of the file lock a moment after the drop.
        let mut refused = Store::open(&path);
        for _ in 0..200 {
            if !matches!(refused, Err(StoreError::Locked { .. })) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            refused = Store::open(&path);
        }
        let err = refused.err().expect("refused");
        assert!(matches!(err, StoreError::Unusable { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("written by a newer quench (store format 3; this one reads up to 2)"),
            "{text}"
        );
        assert!(text.contains("run that quench"), "{text}");
    }

    /// Many stores in one process flushing at once all finish. sled 0.34's
    /// own async flush deadlocks here within a few rounds (its IO pool runs
    /// each flush as a job that waits for a log write queued behind it); a
    /// test binary runs many stores at once, and so did CI when it hung.
    #[test]
    fn many_stores_flushing_at_once_all_finish() {
        const STORES: usize = 32;
        const WRITES: u32 = 20;
        let dir = tempfile::tempdir().unwrap();
        let at = "2026-12-04T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let threads: Vec<_> = (0..STORES)
            .map(|n| {
                let path = dir.path().join(n.to_string());
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let store = Store::open(&path).unwrap();
                        for i in 0..WRITES {
                            let run = ItemRun::pending(format!("key-{i}"));
                            store
                                .put_item("INC-1", "s", i, &run, at, None)
                                .await
                                .unwrap();
                            tx.send(()).unwrap();
                        }
                    });
                })
            })
            .collect();
        drop(tx);
        // A liveness bound, not a speed one: a minute without a single
        // flush finishing anywhere is the deadlock.
        for done in 0..STORES * WRITES as usize {
            if rx.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
                panic!(
                    "store flushes stopped after {done} of {}",
                    STORES * WRITES as usize
                );
            }
        }
        for t in threads {
            t.join().unwrap();
        }
    }

    /// Item writes made at once share a batch: each still gets its own
    /// sequence number, in a chain that verifies, and survives a reopen.
    #[tokio::test]
    async fn item_writes_made_at_once_are_numbered_chained_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let at = "2026-12-02T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let inc = Incident {
                id: "INC-1".into(),
                runbook: "r".into(),
                title: "r".into(),
                status: IncidentStatus::Running,
                declared_at: at,
                declared_by: "test".into(),
                severity: Severity::Sev2,
                inputs: serde_json::json!({}),
                drill: false,
                runbook_file: "r.yaml".into(),
                runbook_source: String::new(),
                finished_at: None,
            };
            store
                .create_incident(&inc, NewEvent::new(EventKind::IncidentDeclared, "t", "d"))
                .await
                .unwrap();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..100u32 {
                let s = store.clone();
                set.spawn(async move {
                    let run = ItemRun::pending(format!("key-{i}"));
                    // Half the writes carry an event (a retry, a failure),
                    // half only the record (a fan-out's success).
                    let ev = (i % 2 == 0)
                        .then(|| NewEvent::new(EventKind::ItemRetry, "t", format!("item {i}")));
                    let stored = s
                        .put_item("INC-1", "revoke", i, &run, at, ev)
                        .await
                        .unwrap();
                    // Each writer is answered with its own event, or none.
                    match &stored {
                        Some(e) => assert_eq!(e.message, format!("item {i}")),
                        None => assert_eq!(i % 2, 1, "item {i} lost its event"),
                    }
                    stored.map(|e| e.seq)
                });
            }
            let mut seqs: Vec<u64> = set.join_all().await.into_iter().flatten().collect();
            seqs.sort_unstable();
            assert_eq!(seqs, (2..52).collect::<Vec<u64>>());
            store.flush().await;
        }
        // Every clone of the store is gone once its writers have answered,
        // but the batch tasks may still hold one for a moment: sled's lock.
        let store = loop {
            match Store::open(dir.path()) {
                Ok(s) => break s,
                Err(StoreError::Locked { .. }) => tokio::task::yield_now().await,
                Err(e) => panic!("{e}"),
            }
        };
        let items = store.item_runs("INC-1", "revoke").unwrap();
        assert_eq!(items.len(), 100);
        assert_eq!(items[&42].idempotency_key, "key-42");
        let events = store.events("INC-1").unwrap();
        assert_eq!(events.len(), 51);
        let report = store.audit("INC-1").unwrap();
        assert_eq!(report.problems, Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_failed_write_makes_the_store_unhealthy_and_wakes_who_waits_on_it() {
        let store = Store::scratch().unwrap();
        assert_eq!(store.health().await, Ok(()));
        let waiter = tokio::spawn({
            let s = store.clone();
            async move { s.faulted().await }
        });
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let r: Result<()> = store.noted(Err(StoreError::Sled(sled::Error::Io(full))));
        assert!(r.is_err());
        waiter.await.unwrap();
        let why = store.health().await.unwrap_err();
        assert!(
            why.starts_with("the store at a temporary store failed: the store cannot read or write its files: No space left on device"),
            "{why}"
        );
        // A record that does not parse is not the files failing.
        let other = Store::scratch().unwrap();
        let _ = other.noted::<()>(Err(StoreError::NoIncident("x".into())));
        assert_eq!(other.health().await, Ok(()));
    }
}
