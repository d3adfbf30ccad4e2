use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than glibc's malloc: with the runtime's workers and
/// sled's threads allocating at once, glibc's arena locks and chunk
/// consolidation were a fifth of the CPU of a large fan-out (perf), and
/// jemalloc's thread caches took the 200,000-item revocation from 30 s
/// to 19 s of CPU with a lower peak RSS (README, "Speed").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // `quench timeline ID | head` should end quietly, as Unix tools do,
    // not panic on the closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any
    // thread starts; no handler is involved.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    quench::install_tls_provider();
    let cli = quench::cli::Cli::parse();
    // The daemon logs at info by default (and as JSON when asked); other
    // commands only warn, so their output stays the report.
    let (default_level, json) = match &cli.command {
        quench::cli::Command::Serve { log_format, .. } => {
            ("info", *log_format == quench::cli::LogFormat::Json)
        }
        _ => ("warn", false),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUENCH_LOG")
        .unwrap_or_else(|_| default_level.into());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(quench::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    };
    // Tasks still running at exit (drivers of incidents a stop abandons;
    // every acknowledged write is flushed already) are dropped here, and a
    // store flush under way on the blocking pool is waited for. Bounded: a
    // disk that stops answering must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    code
}
