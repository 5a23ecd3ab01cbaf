//! The Nexmark queries shipped in `sql/nexmark/` against the built-in generator: their
//! output equals a reference computed in the test from the same generator events.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sluice_connectors::nexmark::{Event, NexmarkConfig, NexmarkGenerator};
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

const EVENTS: u64 = 20_000;

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/nexmark")
}

fn vars(sink: &str) -> BTreeMap<String, String> {
    [
        ("TPS", "10000"),
        ("EVENTS_NUM", "20000"),
        ("PERSON_PROPORTION", "1"),
        ("AUCTION_PROPORTION", "3"),
        ("BID_PROPORTION", "46"),
        ("SINK", sink),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Runs query `q` with a filesystem sink and returns its sorted output lines.
fn run_query(q: &str, parallelism: u32) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut script = String::new();
    for f in ["ddl_gen.sql", "ddl_views.sql", &format!("{q}.sql")] {
        script.push_str(&fs::read_to_string(sql_dir().join(f)).unwrap());
        script.push_str("\n;\n");
    }
    // The shipped queries write to a blackhole; the test reads files instead.
    let out = dir.path().join("out");
    let sink = format!("filesystem', 'path' = '{}', 'format' = 'csv", out.display());
    let script = sluice_sql::substitute(&script, &vars(&sink)).unwrap();
    let mut session = SqlSession::new();
    session
        .set("parallelism.default", &parallelism.to_string())
        .unwrap();
    session
        .execute_script(&script, JobControl::new())
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut lines: Vec<String> = sluice_connectors::committed_parts(&out)
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
    lines.sort();
    lines
}

fn events() -> Vec<Event> {
    let options: BTreeMap<String, String> = [
        ("first-event.rate", "10000"),
        ("next-event.rate", "10000"),
        ("events.num", "20000"),
        ("person.proportion", "1"),
        ("auction.proportion", "3"),
        ("bid.proportion", "46"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let generator = NexmarkGenerator::new(NexmarkConfig::from_options(&options).unwrap()).unwrap();
    (0..EVENTS).map(|n| generator.event(n)).collect()
}

fn ts(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn q0_passes_every_bid_through() {
    let expected = sorted(
        events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Bid(b) => Some(format!(
                    "{},{},{},{},{}",
                    b.auction,
                    b.bidder,
                    b.price,
                    ts(b.date_time),
                    b.extra
                )),
                _ => None,
            })
            .collect(),
    );
    assert_eq!(expected.len(), 18_400);
    assert_eq!(run_query("q0", 2), expected);
}

#[test]
fn q1_converts_prices_to_euros_as_decimals() {
    let expected = sorted(
        events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Bid(b) => {
                    let milli = b.price * 908;
                    Some(format!(
                        "{},{},{}.{:03},{},{}",
                        b.auction,
                        b.bidder,
                        milli / 1000,
                        milli % 1000,
                        ts(b.date_time),
                        b.extra
                    ))
                }
                _ => None,
            })
            .collect(),
    );
    assert_eq!(run_query("q1", 3), expected);
}

#[test]
fn q2_selects_bids_of_some_auctions() {
    let expected = sorted(
        events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Bid(b) if b.auction % 123 == 0 => Some(format!("{},{}", b.auction, b.price)),
                _ => None,
            })
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(run_query("q2", 1), expected);
}

fn bids() -> Vec<sluice_connectors::nexmark::Bid> {
    events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .collect()
}

#[test]
fn q14_classifies_bid_times_with_a_user_function() {
    let expected = sorted(
        bids()
            .into_iter()
            .filter(|b| b.price * 908 > 1_000_000_000 && b.price * 908 < 50_000_000_000)
            .map(|b| {
                let hour = chrono::DateTime::from_timestamp_millis(b.date_time)
                    .unwrap()
                    .format("%H")
                    .to_string()
                    .parse::<u32>()
                    .unwrap();
                let kind = if (8..=18).contains(&hour) {
                    "dayTime"
                } else if hour <= 6 || hour >= 20 {
                    "nightTime"
                } else {
                    "otherTime"
                };
                let milli = b.price * 908;
                format!(
                    "{},{},{}.{:03},{kind},{},{},{}",
                    b.auction,
                    b.bidder,
                    milli / 1000,
                    milli % 1000,
                    ts(b.date_time),
                    b.extra,
                    b.extra.chars().filter(|c| *c == 'c').count()
                )
            })
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(run_query("q14", 2), expected);
}

#[test]
fn q21_extracts_channel_ids() {
    let re = regex::Regex::new("(&|^)channel_id=([^&]*)").unwrap();
    let expected = sorted(
        bids()
            .into_iter()
            .filter_map(|b| {
                let known = match b.channel.to_lowercase().as_str() {
                    "apple" => Some("0"),
                    "google" => Some("1"),
                    "facebook" => Some("2"),
                    "baidu" => Some("3"),
                    _ => None,
                };
                let extracted = re
                    .captures(&b.url)
                    .and_then(|c| c.get(2))
                    .map(|m| m.as_str().to_string());
                let id = match known {
                    Some(k) => k.to_string(),
                    None => extracted?,
                };
                Some(format!(
                    "{},{},{},{},{id}",
                    b.auction, b.bidder, b.price, b.channel
                ))
            })
            .collect(),
    );
    assert!(expected.len() > 1000);
    assert_eq!(run_query("q21", 2), expected);
}

#[test]
fn q22_splits_urls_into_directories() {
    let expected = sorted(
        bids()
            .into_iter()
            .map(|b| {
                let parts: Vec<&str> = b.url.split('/').collect();
                let dir = |i: usize| parts.get(i).copied().unwrap_or("");
                format!(
                    "{},{},{},{},{},{},{}",
                    b.auction,
                    b.bidder,
                    b.price,
                    b.channel,
                    dir(3),
                    dir(4),
                    dir(5)
                )
            })
            .collect(),
    );
    assert_eq!(run_query("q22", 2), expected);
}
