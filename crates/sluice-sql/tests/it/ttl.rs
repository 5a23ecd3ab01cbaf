//! State TTL (`table.exec.state.ttl`): a group idle for longer than the TTL is dropped,
//! and its key starts from scratch when rows come again (as in Flink, the rows emitted
//! before are not retracted); a group used within the TTL is kept. Processing time, so
//! the source is rate-limited: key 0 has rows at the start and at the end, 2.6 s apart;
//! key 1 has a row every 20 ms.

use std::path::Path;

use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

use crate::output::apply_changelog;

fn run(out: &Path, ttl: Option<&str>) -> Vec<String> {
    let ttl = ttl.map_or(String::new(), |t| {
        format!("SET 'table.exec.state.ttl' = '{t}';")
    });
    let sql = format!(
        "SET 'parallelism.default' = '1';
         {ttl}
         CREATE TABLE gen (seq BIGINT) WITH (
           'connector' = 'datagen', 'number-of-rows' = '150', 'rows-per-second' = '50',
           'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '149');
         CREATE TABLE out (k INT, n BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO out
         SELECT k, COUNT(*) FROM (
           SELECT CASE WHEN seq < 10 OR seq >= 140 THEN 0 ELSE 1 END AS k FROM gen)
         GROUP BY k;",
        out.display()
    );
    SqlSession::new()
        .execute_script(&sql, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"));
    apply_changelog(out).0
}

#[test]
fn idle_groups_expire_after_the_state_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let kept = run(&dir.path().join("kept"), None);
    assert_eq!(kept, [r#"{"k":0,"n":20}"#, r#"{"k":1,"n":130}"#]);
    let expired = run(&dir.path().join("expired"), Some("1500 ms"));
    // Key 0 expired between its two bursts: counted twice from scratch, the first row
    // not retracted. Key 1 stayed in use.
    assert_eq!(
        expired,
        [
            r#"{"k":0,"n":10}"#,
            r#"{"k":0,"n":10}"#,
            r#"{"k":1,"n":130}"#
        ]
    );
}
