//! Failure injection for SQL jobs: a task fails mid-stream, the job restores its window
//! state and sources from the last checkpoint, and the committed output equals a
//! failure-free run exactly.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_common::{exec_err, Result as DfResult};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sluice_runtime::{JobControl, JobResult};
use sluice_sql::SqlSession;

use crate::output::{apply_changelog, committed_lines};

/// `fail_once(x)`: returns `x`, but fails the batch in which the job's rows seen pass
/// `at`, once.
#[derive(Debug)]
struct FailOnce {
    seen: AtomicU64,
    at: u64,
    failed: AtomicBool,
    signature: Signature,
}

impl PartialEq for FailOnce {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for FailOnce {}
impl Hash for FailOnce {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "fail_once".hash(state);
    }
}

impl ScalarUDFImpl for FailOnce {
    fn name(&self) -> &str {
        "fail_once"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let before = self
            .seen
            .fetch_add(args.number_rows as u64, Ordering::SeqCst);
        if before + args.number_rows as u64 >= self.at && !self.failed.swap(true, Ordering::SeqCst)
        {
            return exec_err!("injected failure after {before} rows");
        }
        Ok(args.args[0].clone())
    }
}

fn fail_once(at: u64) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(FailOnce {
        seen: AtomicU64::new(0),
        at,
        failed: AtomicBool::new(false),
        signature: Signature::exact(vec![DataType::Int64], Volatility::Volatile),
    }))
}

/// `SET`s that make a job take checkpoints into `checkpoints` every 100 ms; none for a
/// reference run.
fn checkpoint_settings(checkpoints: Option<&Path>) -> String {
    checkpoints.map_or(String::new(), |c| {
        format!(
            "SET 'execution.checkpointing.interval' = '100ms';
             SET 'state.checkpoints.dir' = '{}';",
            c.display()
        )
    })
}

/// Runs `script` with `fail_once` failing the batch where the rows seen pass `fail_at`.
pub(crate) fn run_failing(script: &str, fail_at: u64) -> JobResult {
    let mut session = SqlSession::new();
    session.register_function("fail_once", fail_once(fail_at));
    let sql = format!("CREATE FUNCTION fail_once AS 'fail_once';\n{script}");
    session
        .execute_script(&sql, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap()
}

const ROWS: u64 = 30_000;

/// A HOP aggregation over a rate-limited generator (so checkpoints complete while it
/// runs), with keys spread over two subtasks.
fn script(out: &Path, checkpoints: Option<&Path>, extra: &str) -> String {
    format!(
        "SET 'parallelism.default' = '2';
         {extra}
         CREATE TABLE gen (
           seq BIGINT, k INT, v BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(seq * 10 - MOD(seq * 7919, 997), 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH (
           'connector' = 'datagen', 'number-of-rows' = '{ROWS}', 'rows-per-second' = '40000',
           'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{end}',
           'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '1', 'fields.v.max' = '1000'
         );
         CREATE TABLE out (k INT, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
                           n BIGINT, total BIGINT, top BIGINT, kinds BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
         INSERT INTO out
         SELECT k, window_start, window_end, COUNT(*), SUM(fail_once(v)), MAX(v),
                COUNT(DISTINCT v % 7)
         FROM TABLE(HOP(TABLE gen, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
         GROUP BY k, window_start, window_end;",
        end = ROWS - 1,
        out = out.display(),
        extra = match checkpoints {
            None => String::new(),
            Some(_) => format!("{}\n{extra}", checkpoint_settings(checkpoints)),
        },
    )
}

fn restores_window_state_after_a_failure(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = dir.path().join("reference");
    run_failing(&script(&reference_dir, None, ""), u64::MAX);
    let expected = committed_lines(&reference_dir);
    assert!(expected.len() > 200, "{} windows", expected.len());

    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    let result = run_failing(&script(&out, Some(&checkpoints), extra), ROWS * 3 / 5);
    assert_eq!(
        result.restarts, 1,
        "the injected failure restarts the job once"
    );
    assert!(
        result.restores.iter().all(|&c| c > 0),
        "the restart restored a checkpoint, not the start: {:?}",
        result.restores
    );
    assert_eq!(committed_lines(&out), expected);
}

#[test]
fn hop_window_aggregation_is_exactly_once_across_a_failure() {
    restores_window_state_after_a_failure("");
}

#[test]
fn hop_window_aggregation_is_exactly_once_across_a_failure_with_unaligned_checkpoints() {
    restores_window_state_after_a_failure("SET 'execution.checkpointing.unaligned' = 'true';");
}

fn group_script(out: &Path, checkpoints: Option<&Path>) -> String {
    let settings = checkpoint_settings(checkpoints);
    format!(
        "SET 'parallelism.default' = '2';
         {settings}
         CREATE TABLE gen (seq BIGINT, k INT, v BIGINT) WITH (
           'connector' = 'datagen', 'number-of-rows' = '{ROWS}', 'rows-per-second' = '40000',
           'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{end}',
           'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '1', 'fields.v.max' = '1000');
         CREATE TABLE out (k INT, n BIGINT, total BIGINT, top BIGINT, kinds BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'debezium-json');
         INSERT INTO out
         SELECT k, COUNT(*), SUM(fail_once(v)), MAX(v), COUNT(DISTINCT v % 7)
         FROM gen GROUP BY k;",
        end = ROWS - 1,
        out = out.display(),
    )
}

#[test]
fn group_aggregation_changelog_is_exactly_once_across_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &Path, checkpoints: Option<&Path>, fail_at: u64| {
        run_failing(&group_script(out, checkpoints), fail_at)
    };
    let reference = dir.path().join("reference");
    run(&reference, None, u64::MAX);
    let (expected, _) = apply_changelog(&reference);
    assert_eq!(expected.len(), 41, "one final row per key");
    let out = dir.path().join("out");
    let result = run(&out, Some(&dir.path().join("checkpoints")), ROWS * 3 / 5);
    assert_eq!(result.restarts, 1);
    assert!(
        result.restores.iter().all(|&c| c > 0),
        "{:?}",
        result.restores
    );
    assert_eq!(apply_changelog(&out).0, expected);
}

fn join_script(out: &Path, checkpoints: Option<&Path>) -> String {
    let settings = checkpoint_settings(checkpoints);
    format!(
        "SET 'parallelism.default' = '2';
         {settings}
         CREATE TABLE l (seq BIGINT, k INT, v BIGINT) WITH (
           'connector' = 'datagen', 'number-of-rows' = '{ROWS}', 'rows-per-second' = '40000',
           'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{end}',
           'fields.k.min' = '0', 'fields.k.max' = '3000', 'fields.v.min' = '1', 'fields.v.max' = '1000');
         CREATE TABLE r (id BIGINT, k INT) WITH (
           'connector' = 'datagen', 'number-of-rows' = '3000', 'rows-per-second' = '4000',
           'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '2999',
           'fields.k.min' = '0', 'fields.k.max' = '3000');
         CREATE TABLE out (seq BIGINT, v BIGINT, id BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
         INSERT INTO out
         SELECT l.seq, fail_once(l.v), r.id FROM l JOIN r ON l.k = r.k WHERE l.v > 100;",
        end = ROWS - 1,
        out = out.display(),
    )
}

#[test]
fn join_state_is_exactly_once_across_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &Path, checkpoints: Option<&Path>, fail_at: u64| {
        run_failing(&join_script(out, checkpoints), fail_at)
    };
    let reference = dir.path().join("reference");
    run(&reference, None, u64::MAX);
    let expected = committed_lines(&reference);
    assert!(expected.len() > 10_000, "{} joined rows", expected.len());
    let out = dir.path().join("out");
    let result = run(
        &out,
        Some(&dir.path().join("checkpoints")),
        expected.len() as u64 / 2,
    );
    assert_eq!(result.restarts, 1);
    assert!(
        result.restores.iter().all(|&c| c > 0),
        "{:?}",
        result.restores
    );
    assert_eq!(committed_lines(&out), expected);
}

/// The generator of [`script`] with `query` writing to `out` as `format`.
fn gen_script(
    out: &Path,
    checkpoints: Option<&Path>,
    format: &str,
    sink: &str,
    query: &str,
) -> String {
    let settings = checkpoint_settings(checkpoints);
    format!(
        "SET 'parallelism.default' = '2';
         {settings}
         CREATE TABLE gen (
           seq BIGINT, k INT, v BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(seq * 10 - MOD(seq * 7919, 997), 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
         ) WITH (
           'connector' = 'datagen', 'number-of-rows' = '{ROWS}', 'rows-per-second' = '40000',
           'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{end}',
           'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '1', 'fields.v.max' = '1000'
         );
         CREATE TABLE out ({sink})
         WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = '{format}');
         INSERT INTO out {query};",
        end = ROWS - 1,
        out = out.display(),
    )
}

/// Runs `script(out, checkpoints, fail_at)` without a failure and with one after
/// `fail_at` rows; asserts one restart from a checkpoint and returns both outputs.
fn reference_and_recovered(
    script: impl Fn(&Path, Option<&Path>) -> String,
    fail_at: u64,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    run_failing(&script(&reference, None), u64::MAX);
    let out = dir.path().join("out");
    let result = run_failing(
        &script(&out, Some(&dir.path().join("checkpoints"))),
        fail_at,
    );
    assert_eq!(result.restarts, 1);
    assert!(
        result.restores.iter().all(|&c| c > 0),
        "{:?}",
        result.restores
    );
    (dir, reference, out)
}

#[test]
fn top_n_changelog_is_exactly_once_across_a_failure() {
    let script = |out: &Path, checkpoints: Option<&Path>| {
        gen_script(
            out,
            checkpoints,
            "debezium-json",
            "k INT, v BIGINT, seq BIGINT, rn BIGINT",
            "SELECT k, v, seq, rn FROM (
               SELECT k, v, seq,
                      ROW_NUMBER() OVER (PARTITION BY k ORDER BY fail_once(v) DESC, seq ASC)
                        AS rn
               FROM gen)
             WHERE rn <= 3",
        )
    };
    let (_dir, reference, out) = reference_and_recovered(script, ROWS * 3 / 5);
    let (expected, _) = apply_changelog(&reference);
    assert_eq!(expected.len(), 41 * 3, "three final rows per key");
    assert_eq!(apply_changelog(&out).0, expected);
}

#[test]
fn window_top_n_is_exactly_once_across_a_failure() {
    let script = |out: &Path, checkpoints: Option<&Path>| {
        gen_script(
            out,
            checkpoints,
            "csv",
            "k INT, window_end TIMESTAMP(3), v BIGINT, seq BIGINT, rn BIGINT",
            "SELECT k, window_end, v, seq, rn FROM (
               SELECT k, window_start, window_end, v, seq,
                      ROW_NUMBER() OVER (PARTITION BY window_start, window_end, k
                                         ORDER BY fail_once(v) DESC, seq ASC) AS rn
               FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '10' SECOND)))
             WHERE rn <= 2",
        )
    };
    let (_dir, reference, out) = reference_and_recovered(script, ROWS * 3 / 5);
    let expected = committed_lines(&reference);
    assert!(expected.len() > 41 * 2 * 20, "{} rows", expected.len());
    assert_eq!(committed_lines(&out), expected);
}

#[test]
fn session_windows_are_exactly_once_across_a_failure() {
    let script = |out: &Path, checkpoints: Option<&Path>| {
        gen_script(
            out,
            checkpoints,
            "csv",
            "k INT, s TIMESTAMP(3), e TIMESTAMP(3), n BIGINT, total BIGINT",
            "SELECT k, SESSION_START(ts, INTERVAL '0.4' SECOND),
                    SESSION_END(ts, INTERVAL '0.4' SECOND), COUNT(*), SUM(fail_once(v))
             FROM gen GROUP BY k, SESSION(ts, INTERVAL '0.4' SECOND)",
        )
    };
    let (_dir, reference, out) = reference_and_recovered(script, ROWS * 3 / 5);
    let expected = committed_lines(&reference);
    assert!(expected.len() > 2_000, "{} sessions", expected.len());
    assert_eq!(committed_lines(&out), expected);
}

/// The committed lines of a partitioned file sink with their partition, sorted.
fn partitioned_lines(dir: &Path) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = sluice_connectors::committed_partition_parts(dir)
        .unwrap()
        .into_iter()
        .flat_map(|(partition, path)| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| (partition.clone(), l.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn partitioned_file_sink_is_exactly_once_across_a_failure() {
    let script = |out: &Path, checkpoints: Option<&Path>| {
        gen_script(
            out,
            checkpoints,
            "csv",
            // The table's columns, then its PARTITIONED BY clause.
            "k INT, seq BIGINT, v BIGINT, p STRING) PARTITIONED BY (p",
            "SELECT k, seq, fail_once(v), CAST(MOD(seq, 7) AS STRING) FROM gen",
        )
    };
    let (_dir, reference, out) = reference_and_recovered(script, ROWS * 3 / 5);
    let expected = partitioned_lines(&reference);
    assert_eq!(expected.len() as u64, ROWS);
    assert_eq!(
        expected
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        7
    );
    assert_eq!(partitioned_lines(&out), expected);
}

#[test]
fn changelog_join_is_exactly_once_across_a_failure() {
    let script = |out: &Path, checkpoints: Option<&Path>| {
        gen_script(
            out,
            checkpoints,
            "debezium-json",
            "k INT, n BIGINT, total BIGINT",
            "SELECT L.k, L.n, R.total
             FROM (SELECT k, COUNT(*) AS n FROM gen GROUP BY k) L
             LEFT JOIN (SELECT k, SUM(fail_once(v)) AS total FROM gen
                        WHERE MOD(seq, 3) = 0 GROUP BY k) R
             ON L.k = R.k AND R.total > 122000",
        )
    };
    let (_dir, reference, out) = reference_and_recovered(script, 6_000);
    let (expected, _) = apply_changelog(&reference);
    assert_eq!(expected.len(), 41, "one final row per key");
    assert!(
        expected.iter().any(|r| !r.contains("total")),
        "some keys unmatched"
    );
    assert!(
        expected.iter().any(|r| r.contains("total")),
        "some keys matched"
    );
    assert_eq!(apply_changelog(&out).0, expected);
}
