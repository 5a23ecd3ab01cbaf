//! `sluice-bench nexmark`: the Nexmark SQL queries of `sql/nexmark/` on the built-in
//! generator, with a blackhole sink; prints events per second (events = all generated
//! Nexmark events, as Flink's nexmark benchmark counts them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use sluice_connectors::nexmark::csv::write_csv_files;
use sluice_connectors::nexmark::{NexmarkConfig, NexmarkGenerator};
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql/nexmark")
}

/// Writes the CSV files of `events` events into `dir` unless it already holds them.
fn ensure_csv(dir: &std::path::Path, events: u64) -> Result<()> {
    let marker = dir.join("events.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(events.to_string().as_str()) {
        return Ok(());
    }
    eprintln!(
        "writing {events} Nexmark events as CSV into {} ...",
        dir.display()
    );
    let options: BTreeMap<String, String> = [("events.num".to_string(), events.to_string())].into();
    let generator = NexmarkGenerator::new(NexmarkConfig::from_options(&options)?)?;
    let counts = write_csv_files(&generator, events, dir)
        .with_context(|| format!("cannot write CSV files into {}", dir.display()))?;
    std::fs::write(&marker, events.to_string())?;
    eprintln!(
        "wrote {} persons, {} auctions, {} bids",
        counts[0], counts[1], counts[2]
    );
    Ok(())
}

/// Runs `query` over `events` Nexmark events with `parallelism` subtasks: from the
/// generator, or from CSV files in `csv` (written there first if missing).
pub(crate) fn nexmark(
    query: &str,
    events: u64,
    parallelism: u32,
    csv: Option<PathBuf>,
) -> Result<()> {
    let mut script = String::new();
    let ddl: &[&str] = if csv.is_some() {
        &["ddl_csv.sql"]
    } else {
        &["ddl_gen.sql", "ddl_views.sql"]
    };
    if let Some(dir) = &csv {
        ensure_csv(dir, events)?;
    }
    let query_file = format!("{query}.sql");
    for f in ddl.iter().copied().chain([query_file.as_str()]) {
        let path = sql_dir().join(f);
        script.push_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
        script.push_str("\n;\n");
    }
    // q13's side input: Flink's, keys 0 to 9999 with themselves as values.
    let side_input = std::env::temp_dir().join(format!(
        "sluice-bench-side-input-{}.csv",
        std::process::id()
    ));
    let rows: String = (0..10_000).map(|k| format!("{k},{k}\n")).collect();
    std::fs::write(&side_input, rows)
        .with_context(|| format!("cannot write {}", side_input.display()))?;
    let vars: BTreeMap<String, String> = [
        ("TPS", "10000000".to_string()),
        ("EVENTS_NUM", events.to_string()),
        ("PERSON_PROPORTION", "1".into()),
        ("AUCTION_PROPORTION", "3".into()),
        ("BID_PROPORTION", "46".into()),
        ("SINK", "blackhole".into()),
        ("SIDE_INPUT", side_input.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(
        csv.iter()
            .map(|d| ("CSV_DIR".to_string(), d.display().to_string())),
    )
    .collect();
    let script = sluice_sql::substitute(&script, &vars)?;
    let mut session = SqlSession::new();
    session.set("parallelism.default", &parallelism.to_string())?;
    let result = session.execute_script(&script, JobControl::new());
    let _ = std::fs::remove_file(&side_input);
    let result = result?.context("the query planned no job")?;
    let secs = result.duration.as_secs_f64();
    let rate = events as f64 / secs;
    let mode = if csv.is_some() { "csv" } else { "generator" };
    println!(
        "nexmark {query} ({mode}): {events} events, parallelism {parallelism}: {secs:.2} s, {:.0} events/s ({:.0} per core used)",
        rate,
        rate / f64::from(parallelism.min(2))
    );
    Ok(())
}
