use std::fs;

use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

use crate::output::committed_lines as read_output;

fn run(sql: &str) {
    let mut session = SqlSession::new();
    session
        .execute_script(sql, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn filter_and_project_a_csv_file_into_csv() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "1,10,a\n2,20,b\n3,30,c\n4,40,d\n").unwrap();
    let out = dir.path().join("out");
    run(&format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE t (id BIGINT, price BIGINT, name STRING) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE s (id BIGINT, doubled BIGINT, tag STRING) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO s SELECT id, price * 2, UPPER(name) FROM t WHERE price > 15;",
        input.display(),
        out.display()
    ));
    assert_eq!(read_output(&out), vec!["2,40,B", "3,60,C", "4,80,D"]);
}

#[test]
fn tumbling_window_counts_per_key_fire_at_the_end_of_a_bounded_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bids.csv");
    // ts in seconds; bound 1 s. The file is read as one batch, so the watermark (emitted
    // after each batch, as Flink emits it periodically) makes no row late here.
    fs::write(&input, "1,1\n2,2\n1,5\n2,11\n1,12\n1,3\n2,25\n").unwrap();
    let out = dir.path().join("out");
    run(&format!(
        "SET 'parallelism.default' = '1';
         CREATE TABLE bid (auction BIGINT, sec BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(sec * 1000, 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE s (auction BIGINT, window_start TIMESTAMP(3), window_end TIMESTAMP(3), num BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO s
         SELECT auction, window_start, window_end, COUNT(*) AS num
         FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))
         GROUP BY auction, window_start, window_end;",
        input.display(),
        out.display()
    ));
    assert_eq!(
        read_output(&out),
        vec![
            "1,1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,3",
            "1,1970-01-01 00:00:10.000,1970-01-01 00:00:20.000,1",
            "2,1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,1",
            "2,1970-01-01 00:00:10.000,1970-01-01 00:00:20.000,1",
            "2,1970-01-01 00:00:20.000,1970-01-01 00:00:30.000,1",
        ]
    );
}
