//! End-to-end: the word count job on real files, against a sequential count.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use sluice_api::{JobStatus, RuntimeMode, StreamExecutionEnvironment};
use sluice_examples::{bundled_text, wordcount};

fn sequential_counts(text: &str) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_string()).or_insert(0) += 1;
    }
    counts
}

fn parse_lines(output: &str) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for line in output.lines() {
        let (word, count) = line.rsplit_once(',').expect("a `word,count` line");
        let previous = counts.insert(word.to_string(), count.parse().expect("a count"));
        assert!(previous.is_none(), "word {word} appears twice");
    }
    counts
}

fn run_to_file(input: &Path, output: &Path, parallelism: u32) -> JobStatus {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_runtime_mode(RuntimeMode::Batch)
        .set_handle_ctrl_c(false);
    wordcount(&env, input)
        .write_as_text(output)
        .set_parallelism(1);
    env.execute("wordcount-test").expect("job runs").status
}

#[test]
fn counts_the_bundled_text_like_a_sequential_count_at_any_parallelism() {
    let text = std::fs::read_to_string(bundled_text()).unwrap();
    let expected = sequential_counts(&text);
    assert!(expected.len() > 100);
    for parallelism in [1, 2, 3, 4] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("counts.csv");
        assert_eq!(
            run_to_file(&bundled_text(), &out, parallelism),
            JobStatus::Finished
        );
        let written = std::fs::read_to_string(&out).unwrap();
        assert_eq!(parse_lines(&written), expected, "parallelism {parallelism}");
        assert!(
            !dir.path().join(".counts.csv.inprogress").exists(),
            "the in-progress file is renamed"
        );
    }
}

#[test]
fn counts_a_directory_of_files_split_across_subtasks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let mut all = String::new();
    for f in 0..5 {
        let mut text = String::new();
        for line in 0..2_000 {
            // Long and short lines, Windows line ends in one file, no final newline in another.
            let words: Vec<String> = (0..(line % 13))
                .map(|w| format!("w{}", (line * 7 + w * f) % 97))
                .collect();
            text.push_str(&words.join(" "));
            text.push_str(if f == 2 { "\r\n" } else { "\n" });
        }
        if f == 3 {
            text.push_str("tail words without newline");
        }
        std::fs::write(input.join(format!("part-{f}.txt")), &text).unwrap();
        all.push_str(&text);
        all.push('\n');
    }
    // Hidden files are skipped, like Flink's file source.
    std::fs::write(input.join(".hidden"), "ignored ignored").unwrap();
    let expected = sequential_counts(&all);
    let out = dir.path().join("counts.csv");
    run_to_file(&input, &out, 3);
    assert_eq!(
        parse_lines(&std::fs::read_to_string(&out).unwrap()),
        expected
    );
}

#[test]
fn a_missing_input_fails_with_the_path_and_a_hint() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    wordcount(&env, Path::new("/no/such/file.txt")).discard();
    let err = env.execute("missing").unwrap_err().to_string();
    assert!(err.contains("/no/such/file.txt"), "{err}");
    assert!(err.contains("check that the path exists"), "{err}");
    assert!(err.contains("Source: Text File"), "{err}");
}

#[test]
fn invalid_utf8_fails_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.txt");
    std::fs::write(&input, b"good line\nbad \xff line\n").unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1).set_handle_ctrl_c(false);
    wordcount(&env, &input).discard();
    let err = env.execute("bad-utf8").unwrap_err().to_string();
    assert!(err.contains("invalid UTF-8"), "{err}");
    assert!(err.contains("byte 10"), "{err}");
}
