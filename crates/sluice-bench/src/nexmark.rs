//! `sluice-bench nexmark`: the Nexmark SQL queries of `sql/nexmark/` on the built-in
//! generator, with a blackhole sink; prints events per second (events = all generated
//! Nexmark events, as Flink's nexmark benchmark counts them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql/nexmark")
}

/// Runs `query` over `events` generated events with `parallelism` subtasks.
pub(crate) fn nexmark(query: &str, events: u64, parallelism: u32, batch_size: usize) -> Result<()> {
    let mut script = String::new();
    for f in ["ddl_gen.sql", "ddl_views.sql", &format!("{query}.sql")] {
        let path = sql_dir().join(f);
        script.push_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
        script.push_str("\n;\n");
    }
    let vars: BTreeMap<String, String> = [
        ("TPS", "10000000".to_string()),
        ("EVENTS_NUM", events.to_string()),
        ("PERSON_PROPORTION", "1".into()),
        ("AUCTION_PROPORTION", "3".into()),
        ("BID_PROPORTION", "46".into()),
        ("SINK", "blackhole".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let script = sluice_sql::substitute(&script, &vars)?;
    let mut session = SqlSession::new();
    session.set("parallelism.default", &parallelism.to_string())?;
    let _ = batch_size;
    let result = session
        .execute_script(&script, JobControl::new())?
        .context("the query planned no job")?;
    let secs = result.duration.as_secs_f64();
    let rate = events as f64 / secs;
    println!(
        "nexmark {query}: {events} events, parallelism {parallelism}: {secs:.2} s, {:.0} events/s ({:.0} per core used)",
        rate,
        rate / f64::from(parallelism.min(2))
    );
    Ok(())
}
