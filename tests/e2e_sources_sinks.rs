//! End-to-end: built-in sources and sinks with real files and sockets.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpListener;

use sluice_api::{JobStatus, StreamExecutionEnvironment};

fn env(parallelism: u32) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism).set_handle_ctrl_c(false);
    env
}

#[test]
fn socket_source_reads_lines_until_the_server_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        for i in 0..5_000 {
            writeln!(conn, "line {i}").unwrap();
        }
        write!(conn, "last line without newline").unwrap();
    });
    let env = env(2);
    let out = env
        .socket_text_stream("127.0.0.1", port)
        .map(|l: String| l.to_uppercase())
        .collect();
    let result = env.execute("socket").unwrap();
    server.join().unwrap();
    assert_eq!(result.status, JobStatus::Finished);
    let mut lines = out.take();
    lines.sort();
    let mut expected: Vec<String> = (0..5_000).map(|i| format!("LINE {i}")).collect();
    expected.push("LAST LINE WITHOUT NEWLINE".into());
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn text_sink_with_parallelism_writes_one_part_file_per_subtask() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let env = env(3);
    env.from_sequence(1, 3_000).write_as_text(&out_dir);
    env.execute("parts").unwrap();
    let mut all: Vec<u64> = Vec::new();
    for part in 0..3 {
        let text = std::fs::read_to_string(out_dir.join(format!("part-{part}"))).unwrap();
        assert!(!text.is_empty(), "part-{part} is empty");
        all.extend(text.lines().map(|l| l.parse::<u64>().unwrap()));
    }
    all.sort_unstable();
    assert_eq!(all, (1..=3_000).collect::<Vec<_>>());
}

#[test]
fn a_sink_to_a_missing_directory_fails_with_the_path() {
    let env = env(1);
    env.from_sequence(1, 3)
        .write_as_text("/no/such/dir/out.txt");
    let err = env.execute("bad-sink").unwrap_err().to_string();
    assert!(err.contains("/no/such/dir/.out.txt.inprogress"), "{err}");
    assert!(err.contains("check that the directory exists"), "{err}");
}

#[test]
fn generator_and_sequence_split_over_subtasks_without_gaps() {
    let env = env(4);
    let squares = env.generate(1_000, |i| i * i).collect();
    let seq = env.from_sequence(10, 19).collect();
    let empty = env.from_sequence(5, 4).collect();
    env.execute("generators").unwrap();
    let mut s = squares.take();
    s.sort_unstable();
    assert_eq!(s, (0..1_000u64).map(|i| i * i).collect::<Vec<_>>());
    let mut q = seq.take();
    q.sort_unstable();
    assert_eq!(q, (10..=19).collect::<Vec<u64>>());
    assert!(empty.take().is_empty());
}
