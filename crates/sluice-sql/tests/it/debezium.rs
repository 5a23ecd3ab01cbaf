//! Reading `debezium-json` changelogs: Sluice's own output read back by another job, and
//! envelopes as Debezium writes them (`r` snapshot rows, a `payload` wrapper, updates and
//! deletes), with a malformed line failing the job or skipped by the policy.

use std::fs;
use std::path::Path;

use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

use crate::output::apply_changelog;

fn run(sql: &str) -> Result<(), String> {
    SqlSession::new()
        .execute_script(sql, JobControl::new())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn a_changelog_written_by_one_job_is_read_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let text: String = (0..2_000).map(|i| format!("{},{}\n", i % 13, i)).collect();
    fs::write(&input, text).unwrap();
    let changes = dir.path().join("changes");
    let counts = dir.path().join("counts");
    run(&format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE t (k INT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE c (k INT, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO c SELECT k, COUNT(*) FROM t GROUP BY k;",
        input.display(),
        changes.display()
    ))
    .unwrap();
    // The second job reads the first one's changelog and aggregates it again: how many
    // keys have each count. Only the final counts may remain.
    run(&format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE c (k INT, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         CREATE TABLE h (n BIGINT, keys BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO h SELECT n, COUNT(*) FROM c GROUP BY n;",
        changes.display(),
        counts.display()
    ))
    .unwrap();
    // 2000 rows over 13 keys: 11 keys have 154 rows, 2 have 153.
    assert_eq!(
        apply_changelog(&counts).0,
        [r#"{"keys":11,"n":154}"#, r#"{"keys":2,"n":153}"#]
    );
}

fn debezium_script(input: &Path, out: &Path, ignore: bool) -> String {
    format!(
        "CREATE TABLE products (id INT, name STRING, price DOUBLE) WITH (
           'connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json',
           'debezium-json.ignore-parse-errors' = '{ignore}');
         CREATE TABLE o (name STRING, price DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO o SELECT name, price FROM products WHERE price > 1;",
        input.display(),
        out.display()
    )
}

#[test]
fn debezium_envelopes_become_inserts_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("products.json");
    let lines = [
        r#"{"before":null,"after":{"id":1,"name":"scooter","price":3.14},"op":"r","ts_ms":1}"#,
        r#"{"before":null,"after":{"id":2,"name":"hammer","price":8.1},"op":"c"}"#,
        r#"{"payload":{"before":null,"after":{"id":3,"name":"rocks","price":5.3},"op":"c"}}"#,
        r#"{"before":{"id":1,"name":"scooter","price":3.14},"after":{"id":1,"name":"scooter","price":5.18},"op":"u"}"#,
        r#"{"before":{"id":2,"name":"hammer","price":8.1},"after":null,"op":"d"}"#,
        "not json",
    ];
    fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out");
    let err = run(&debezium_script(&input, &out, false)).unwrap_err();
    assert!(
        err.contains("malformed Debezium change") && err.contains("not json"),
        "{err}"
    );
    run(&debezium_script(&input, &dir.path().join("out2"), true)).unwrap();
    assert_eq!(
        apply_changelog(&dir.path().join("out2")).0,
        [
            r#"{"name":"rocks","price":5.3}"#,
            r#"{"name":"scooter","price":5.18}"#
        ]
    );
}

/// Plans that would silently give wrong results are refused at planning, saying why.
#[test]
fn unsupported_shapes_are_refused_at_planning() {
    let ddl = "CREATE TABLE c (k INT, n BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
                 WITH ('connector' = 'filesystem', 'path' = '/nonexistent', 'format' = 'debezium-json');
               CREATE TABLE o (k INT, n BIGINT) WITH ('connector' = 'print');";
    let plan = |query: &str| {
        SqlSession::new()
            .plan_script(&format!("{ddl} INSERT INTO o {query};"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = plan(
        "SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(ts), INTERVAL '1' SECOND))
         GROUP BY k, window_start, window_end",
    )
    .unwrap_err();
    assert!(err.contains("produces updates"), "{err}");
    let err = plan(
        "SELECT k, n FROM (SELECT k, n, ROW_NUMBER() OVER (PARTITION BY k ORDER BY n) AS rn FROM c)
         WHERE rn <= 3 AND rn <> 2",
    )
    .unwrap_err();
    assert!(err.contains("rownum <= N"), "{err}");
}

/// A `LEFT` lookup join keeps its input's order: an update whose old row has no match and
/// whose new row has one emits the retraction of the NULL-padded row first.
#[test]
fn a_left_lookup_join_keeps_the_order_of_a_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let changes = dir.path().join("changes.json");
    fs::write(
        &changes,
        [
            r#"{"before":null,"after":{"id":1,"k":99},"op":"c"}"#,
            r#"{"before":{"id":1,"k":99},"after":{"id":1,"k":7},"op":"u"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let side = dir.path().join("side.csv");
    fs::write(&side, "7,seven\n").unwrap();
    let out = dir.path().join("out");
    run(&format!(
        "CREATE TABLE c (id INT, k INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         CREATE TABLE side (key INT, v STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE o (id INT, v STRING)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json');
         INSERT INTO o SELECT C.id, S.v
         FROM (SELECT *, PROCTIME() AS pt FROM c) C
         LEFT JOIN side FOR SYSTEM_TIME AS OF C.pt AS S ON C.k = S.key;",
        changes.display(),
        side.display(),
        out.display()
    ))
    .unwrap();
    let lines: Vec<String> = sluice_connectors::committed_parts(&out)
        .unwrap()
        .into_iter()
        .flat_map(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        lines,
        [
            r#"{"before":null,"after":{"id":1},"op":"c"}"#,
            r#"{"before":{"id":1},"after":null,"op":"d"}"#,
            r#"{"before":null,"after":{"id":1,"v":"seven"},"op":"c"}"#,
        ]
    );
}
