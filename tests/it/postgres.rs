//! A PostgreSQL for the shared-store tests.
//!
//! `QUENCH_TEST_DATABASE_URL` names a server to use (its user must be
//! allowed to create databases). Otherwise the first test that needs one
//! starts a throwaway server from the machine's own binaries (`initdb` and
//! `postgres` from `QUENCH_PG_BIN`, the PATH, `pg_config --bindir`, or
//! /usr/lib/postgresql/*/bin) in a temp dir on a free port, as the
//! `postgres` user when the tests run as root (PostgreSQL refuses root).
//! It stops when the test process ends: it runs under a shell that waits
//! on a pipe from this process, which the kernel closes however the
//! process ends, and the shell then stops it and removes its files.
//!
//! Each test gets a database of its own. A machine with neither fails the
//! test with what to install: these tests are never skipped.

use std::io::Read;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Server {
    /// `postgres://USER@HOST:PORT`, without a database.
    base: String,
    /// The directory of its Unix socket.
    socket: PathBuf,
    port: u16,
    /// The shell that stops the server when this pipe closes.
    _guard: Mutex<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static TLS_SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A fresh, empty database: its URL.
pub(crate) async fn database() -> String {
    let admin = match std::env::var("QUENCH_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let server = SERVER
                .get_or_init(|| start(false))
                .as_ref()
                .unwrap_or_else(|e| panic!("{e}"));
            format!("{}/postgres", server.base)
        }
    };
    let name = create(&admin).await;
    with_database(&admin, &name)
}

/// A fresh database on a server of its own that takes TCP connections
/// only over TLS, with a certificate for `localhost` (only) signed by
/// [`tls_ca`]: the server's port and the database's name. That server is
/// always started here (`QUENCH_TEST_DATABASE_URL` names one whose TLS
/// the tests cannot know), and its databases are made over its socket.
pub(crate) async fn tls_database() -> (u16, String) {
    let server = TLS_SERVER
        .get_or_init(|| start(true))
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = format!(
        "host={} port={} user=quench dbname=postgres",
        server.socket.display(),
        server.port
    );
    (server.port, create(&admin).await)
}

/// The CA that signs the TLS server's certificate (tests/fixtures/pg-tls).
pub(crate) fn tls_ca() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg-tls/ca.pem")
}

/// Creates a database through `admin`: its name.
async fn create(admin: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "quench_t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    name
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (head, tail) = match url.split_once('?') {
        Some((h, t)) => (h, format!("?{t}")),
        None => (url, String::new()),
    };
    let authority_end = head
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| head[start..].find('/').map(|j| start + j))
        .unwrap_or(head.len());
    format!("{}/{name}{tail}", &head[..authority_end])
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(d) = std::env::var("QUENCH_PG_BIN") {
        return Ok(d.into());
    }
    // On PATH (Homebrew, Nix), or where pg_config says.
    if let Some(d) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|d| d.join("initdb").exists())
    {
        return Ok(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if d.join("initdb").exists() {
            return Ok(d);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").exists())
        .collect();
    // The newest installed major version.
    found.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().ok_or_else(|| {
        "the shared-store tests need PostgreSQL: set QUENCH_TEST_DATABASE_URL to a server whose user may create databases, or install the server binaries (Debian: apt-get install postgresql) so they can start one".to_string()
    })
}

/// The uid and gid of the `postgres` user, when running as root.
fn run_as() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&"postgres") || f.len() < 4 {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?))
    })
}

fn command(bin: &Path, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(bin);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

/// `tls`: take TCP connections only over TLS (tests/fixtures/pg-tls).
fn start(tls: bool) -> Result<Server, String> {
    let bin = bin_dir()?;
    let user = run_as();
    if run_as_root_without_postgres(user) {
        return Err("the tests run as root and there is no `postgres` user to run PostgreSQL as (it refuses root): create one, or set QUENCH_TEST_DATABASE_URL".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("quench-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if let Some((uid, gid)) = user {
        chown(&dir, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    let out = command(&bin.join("initdb"), user)
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "quench",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("running {}: {e}", bin.join("initdb").display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let options = if tls {
        with_tls(&data, user)?
    } else {
        String::new()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The shell stops the server (a fast shutdown) and removes its files
    // once its stdin, a pipe from this process, closes.
    let script = r#"
        "$0" -D "$1/data" -p "$2" -k "$1" -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 $3 >"$1/log" 2>&1 &
        pid=$!
        cat >/dev/null
        kill -INT "$pid"
        wait "$pid"
        rm -rf "$1"
    "#;
    // In a process group of its own: a Ctrl-C at the terminal ends the
    // tests, whose pipe closing then stops the server in order.
    let mut guard = command(Path::new("/bin/sh"), user);
    std::os::unix::process::CommandExt::process_group(&mut guard, 0);
    let mut guard = guard
        .arg("-c")
        .arg(script)
        .arg(bin.join("postgres"))
        .arg(&dir)
        .arg(port.to_string())
        .arg(options)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    // Ready when it says so in its log (pg_ctl -w polls too; there is
    // nothing to await), or failed when the shell is gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut log = String::new();
        let _ = std::fs::File::open(dir.join("log")).and_then(|mut f| f.read_to_string(&mut log));
        if log.contains("database system is ready to accept connections") {
            break;
        }
        let exited = guard.try_wait().ok().flatten();
        if Instant::now() > deadline || exited.is_some() {
            return Err(format!(
                "the test PostgreSQL did not start on port {port} (its shell: {exited:?}):\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server {
        base: format!("postgres://quench@127.0.0.1:{port}"),
        socket: dir,
        port,
        _guard: Mutex::new(guard),
    })
}

/// Puts the test certificate and key in `data` and lets TCP clients in
/// only over TLS (the socket stays open to the tests' own setup): the
/// server's options for it.
fn with_tls(data: &Path, user: Option<(u32, u32)>) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let fixtures = tls_ca().parent().unwrap().to_path_buf();
    for (file, mode) in [("server.pem", 0o644), ("server.key", 0o600)] {
        let to = data.join(file);
        std::fs::copy(fixtures.join(file), &to).map_err(|e| format!("{file}: {e}"))?;
        if let Some((uid, gid)) = user {
            chown(&to, Some(uid), Some(gid)).map_err(|e| format!("chown {file}: {e}"))?;
        }
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {file}: {e}"))?;
    }
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
    )
    .map_err(|e| format!("pg_hba.conf: {e}"))?;
    Ok("-c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key".into())
}

fn run_as_root_without_postgres(user: Option<(u32, u32)>) -> bool {
    user.is_none()
        && Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
}

#[test]
fn a_database_name_replaces_the_one_in_the_url() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres", "t1"),
        "postgres://u:p@h:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u@h:5432", "t1"),
        "postgres://u@h:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u@h/db?sslmode=disable", "t1"),
        "postgres://u@h/t1?sslmode=disable"
    );
}
