//! `quench store migrate --from DIR|URL --to DIR|URL`: every record of one
//! store copied, byte for byte, into another that is empty, in one commit;
//! then the audit chain of every incident is verified on the copy.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;

use crate::store::Store;

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// How a store is named in messages: a URL by its host, port and
/// database (never its password).
fn shown(s: &str) -> String {
    if is_url(s) {
        crate::store::shared::place(s)
            .map(|p| format!("postgres://{p}"))
            .unwrap_or_else(|_| "the PostgreSQL URL given".into())
    } else {
        s.to_string()
    }
}

/// A database is taken with its lease, so no daemon writes it meanwhile
/// (one that leads it is named in the refusal).
async fn open(s: &str) -> anyhow::Result<Store> {
    if is_url(s) {
        Ok(Store::open_leading(s, "quench store migrate").await?)
    } else {
        Ok(Store::open(Path::new(s))?)
    }
}

pub(super) async fn migrate(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    if is_url(from) == is_url(to) {
        eprintln!("error: `store migrate` copies between the two backends: give a data dir and a postgres:// URL (--from DIR --to URL, or --from URL --to DIR)");
        return Ok(ExitCode::from(2));
    }
    let (src_name, dst_name) = (shown(from), shown(to));
    let src = open(from).await?;
    let dst = match open(to).await {
        Ok(d) => d,
        Err(e) => {
            release(&src).await;
            return Err(e);
        }
    };
    // The leases go back however the copy ends: a failed migrate must not
    // keep a daemon from leading for the rest of a lease.
    let out = copy(&src, &dst, &src_name, &dst_name).await;
    release(&src).await;
    release(&dst).await;
    let (copied, incidents) = out?;
    println!(
        "copied {copied} records ({incidents} incidents) from {src_name} to {dst_name}; the audit chain verifies on every incident"
    );
    Ok(ExitCode::SUCCESS)
}

/// Gives a database's lease up; a failure only delays the next leader
/// until the lease runs out, so it is reported, not fatal.
async fn release(store: &Store) {
    if let Err(e) = store.release().await {
        eprintln!(
            "warning: could not give the lease on {} up: {e} (it runs out by itself)",
            store.path()
        );
    }
}

/// Copies every record of `src` into the empty `dst` and verifies the
/// audit chain of every incident there: the records and incidents copied.
async fn copy(
    src: &Store,
    dst: &Store,
    src_name: &str,
    dst_name: &str,
) -> anyhow::Result<(u64, usize)> {
    if !dst.is_empty() {
        return Err(anyhow!(
            "{dst_name} already holds a store ({} incidents); nothing was copied: migrate into an empty database or data dir",
            dst.incidents()?.len()
        ));
    }
    let incidents = src.incidents()?;
    eprintln!(
        "copying {} incidents from {src_name} to {dst_name}",
        incidents.len()
    );
    let copied = dst.import(src.records()).await?;
    let mut broken = Vec::new();
    for inc in &incidents {
        let report = dst.audit(&inc.id)?;
        if !report.intact() {
            broken.push(format!("{}: {}", inc.id, report.problems.join("; ")));
        }
    }
    if !broken.is_empty() {
        return Err(anyhow!(
            "copied {copied} records to {dst_name}, but the audit chain does not verify there:\n{}",
            broken.join("\n")
        ));
    }
    Ok((copied, incidents.len()))
}
