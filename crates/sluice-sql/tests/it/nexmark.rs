//! The Nexmark queries shipped in `sql/nexmark/` against the built-in generator: their
//! output equals a reference computed in the test from the same generator events.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sluice_connectors::nexmark::{Event, NexmarkConfig, NexmarkGenerator};
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

use crate::output::{apply_changelog, committed_lines};

const EVENTS: u64 = 20_000;

pub(crate) fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/nexmark")
}

pub(crate) fn vars_at(tps: u32) -> BTreeMap<String, String> {
    let tps = tps.to_string();
    [
        ("TPS", tps.as_str()),
        ("EVENTS_NUM", "20000"),
        ("PERSON_PROPORTION", "1"),
        ("AUCTION_PROPORTION", "3"),
        ("BID_PROPORTION", "46"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Runs the script of the shipped `files` (DDL, then the query) at `parallelism`, with
/// `vars` and the query's sink writing `format` files; returns the temporary directory
/// and the sink's directory.
pub(crate) fn run_files(
    files: &[&str],
    parallelism: u32,
    format: &str,
    vars: BTreeMap<String, String>,
) -> (tempfile::TempDir, PathBuf) {
    let mut script = String::new();
    for f in files {
        script.push_str(&fs::read_to_string(sql_dir().join(f)).unwrap());
        script.push_str("\n;\n");
    }
    run_script(&script, parallelism, format, vars)
}

/// Runs `script`, whose sink is the connector `${SINK}`, like [`run_files`].
pub(crate) fn run_script(
    script: &str,
    parallelism: u32,
    format: &str,
    mut vars: BTreeMap<String, String>,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    // The shipped queries write to a blackhole; the test reads files instead.
    let out = dir.path().join("out");
    let sink = format!(
        "filesystem', 'path' = '{}', 'format' = '{format}",
        out.display()
    );
    vars.insert("SINK".into(), sink);
    let script = sluice_sql::substitute(script, &vars).unwrap();
    let mut session = SqlSession::new();
    session
        .set("parallelism.default", &parallelism.to_string())
        .unwrap();
    session
        .execute_script(&script, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, out)
}

/// Runs query `q` with a filesystem sink and returns its sorted output lines.
fn run_query(q: &str, parallelism: u32) -> Vec<String> {
    run_query_at(q, parallelism, 10_000)
}

/// [`run_query`] with the generator at `tps` events per second of event time.
pub(crate) fn run_query_at(q: &str, parallelism: u32, tps: u32) -> Vec<String> {
    let query = format!("{q}.sql");
    let (_dir, out) = run_files(
        &["ddl_gen.sql", "ddl_views.sql", &query],
        parallelism,
        "csv",
        vars_at(tps),
    );
    committed_lines(&out)
}

pub(crate) fn events() -> Vec<Event> {
    events_at(10_000)
}

pub(crate) fn events_at(tps: u32) -> Vec<Event> {
    let tps = tps.to_string();
    let options: BTreeMap<String, String> = [
        ("first-event.rate", tps.as_str()),
        ("next-event.rate", tps.as_str()),
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

pub(crate) fn ts(ms: i64) -> String {
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

pub(crate) fn bids() -> Vec<sluice_connectors::nexmark::Bid> {
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

/// Runs an updating query `q` into a Debezium JSON file sink and applies its changelog:
/// the final rows, as JSON objects, sorted.
pub(crate) fn run_changelog(q: &str, parallelism: u32) -> Vec<serde_json::Value> {
    let query = format!("{q}.sql");
    let (_dir, out) = run_files(
        &["ddl_gen.sql", "ddl_views.sql", &query],
        parallelism,
        "debezium-json",
        vars_at(10_000),
    );
    let (rows, changes) = apply_changelog(&out);
    assert!(changes > rows.len(), "an updating query emits updates");
    let mut values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    values.sort_by_key(|v| v.to_string());
    values
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn q15_counts_bids_bidders_and_auctions_per_price_rank_with_updates() {
    use std::collections::{BTreeMap, BTreeSet};
    #[derive(Default)]
    struct Day {
        bids: [i64; 4],
        bidders: [BTreeSet<i64>; 4],
        auctions: [BTreeSet<i64>; 4],
    }
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    for b in bids() {
        let d = days.entry(day(b.date_time)).or_default();
        let rank = if b.price < 10_000 {
            1
        } else if b.price < 1_000_000 {
            2
        } else {
            3
        };
        for r in [0, rank] {
            d.bids[r] += 1;
            d.bidders[r].insert(b.bidder);
            d.auctions[r].insert(b.auction);
        }
    }
    let mut expected: Vec<serde_json::Value> = days
        .into_iter()
        .map(|(k, d)| {
            serde_json::json!({
                "day": k,
                "total_bids": d.bids[0], "rank1_bids": d.bids[1], "rank2_bids": d.bids[2], "rank3_bids": d.bids[3],
                "total_bidders": d.bidders[0].len(), "rank1_bidders": d.bidders[1].len(),
                "rank2_bidders": d.bidders[2].len(), "rank3_bidders": d.bidders[3].len(),
                "total_auctions": d.auctions[0].len(), "rank1_auctions": d.auctions[1].len(),
                "rank2_auctions": d.auctions[2].len(), "rank3_auctions": d.auctions[3].len(),
            })
        })
        .collect();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(run_changelog("q15", 2), expected);
}

#[test]
fn q17_reports_auction_statistics_per_day_with_updates() {
    use std::collections::BTreeMap;
    /// Count, counts per price rank, min, max and sum of one group.
    type Stats = (i64, [i64; 3], i64, i64, i64);
    let mut groups: BTreeMap<(i64, String), Stats> = BTreeMap::new();
    for b in bids() {
        let g = groups.entry((b.auction, day(b.date_time))).or_insert((
            0,
            [0; 3],
            i64::MAX,
            i64::MIN,
            0,
        ));
        g.0 += 1;
        let rank = if b.price < 10_000 {
            0
        } else if b.price < 1_000_000 {
            1
        } else {
            2
        };
        g.1[rank] += 1;
        g.2 = g.2.min(b.price);
        g.3 = g.3.max(b.price);
        g.4 += b.price;
    }
    let mut expected: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|((auction, d), (n, ranks, min, max, sum))| {
            serde_json::json!({
                "auction": auction, "day": d, "total_bids": n,
                "rank1_bids": ranks[0], "rank2_bids": ranks[1], "rank3_bids": ranks[2],
                "min_price": min, "max_price": max, "avg_price": sum / n, "sum_price": sum,
            })
        })
        .collect();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(run_changelog("q17", 2), expected);
}

#[test]
fn q3_joins_auctions_with_their_sellers() {
    use std::collections::HashMap;
    let all = events();
    let persons: HashMap<i64, sluice_connectors::nexmark::Person> = all
        .iter()
        .filter_map(|e| match e {
            Event::Person(p) => Some((p.id, p.clone())),
            _ => None,
        })
        .collect();
    let expected = sorted(
        all.iter()
            .filter_map(|e| match e {
                Event::Auction(a) if a.category == 10 => {
                    let p = persons.get(&a.seller)?;
                    ["OR", "ID", "CA"]
                        .contains(&p.state.as_str())
                        .then(|| format!("{},{},{},{}", p.name, p.city, p.state, a.id))
                }
                _ => None,
            })
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(run_query("q3", 2), expected);
}

#[test]
fn q20_expands_bids_with_their_auctions() {
    use std::collections::HashMap;
    let all = events();
    let auctions: HashMap<i64, sluice_connectors::nexmark::Auction> = all
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) if a.category == 10 => Some((a.id, a.clone())),
            _ => None,
        })
        .collect();
    let expected = sorted(
        bids()
            .into_iter()
            .filter_map(|b| {
                let a = auctions.get(&b.auction)?;
                Some(format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    b.auction,
                    b.bidder,
                    b.price,
                    b.channel,
                    b.url,
                    ts(b.date_time),
                    b.extra,
                    a.item_name,
                    a.description,
                    a.initial_bid,
                    a.reserve,
                    ts(a.date_time),
                    ts(a.expires),
                    a.seller,
                    a.category,
                    a.extra
                ))
            })
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(run_query("q20", 2), expected);
}

#[test]
fn q7_finds_the_highest_bids_of_each_period() {
    use std::collections::BTreeMap;
    // 20 000 events at 500 per second: 40 s of event time, four 10 s windows.
    let bids: Vec<_> = events_at(500)
        .into_iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .collect();
    let mut max_per_window: BTreeMap<i64, i64> = BTreeMap::new();
    for b in &bids {
        let end = b.date_time - b.date_time.rem_euclid(10_000) + 10_000;
        let m = max_per_window.entry(end).or_insert(i64::MIN);
        *m = (*m).max(b.price);
    }
    assert!(max_per_window.len() >= 4);
    let mut expected = Vec::new();
    for b in &bids {
        for (&end, &max) in &max_per_window {
            if b.price == max && end - 10_000 <= b.date_time && b.date_time <= end {
                // Flink's q7 inserts (auction, price, bidder, ...) into (auction, bidder,
                // price, ...): by position, as written.
                expected.push(format!(
                    "{},{},{},{},{}",
                    b.auction,
                    b.price,
                    b.bidder,
                    ts(b.date_time),
                    b.extra
                ));
            }
        }
    }
    assert_eq!(run_query_at("q7", 2, 500), sorted(expected));
}

#[test]
fn q5_finds_the_hottest_auctions_of_each_sliding_window() {
    use std::collections::BTreeMap;
    // 20 000 events at 1 000 per second: 20 s of event time, many 10 s windows sliding by 2 s.
    let bids: Vec<_> = events_at(1000)
        .into_iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .collect();
    // (window start, auction) -> bids
    let mut counts: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for b in &bids {
        let mut start = b.date_time - b.date_time.rem_euclid(2_000);
        while start + 10_000 > b.date_time {
            *counts.entry((start, b.auction)).or_default() += 1;
            start -= 2_000;
        }
    }
    let mut max: BTreeMap<i64, i64> = BTreeMap::new();
    for (&(start, _), &n) in &counts {
        let m = max.entry(start).or_insert(0);
        *m = (*m).max(n);
    }
    let expected: Vec<String> = counts
        .iter()
        .filter(|((start, _), n)| **n >= max[start])
        .map(|((_, auction), n)| format!("{auction},{n}"))
        .collect();
    assert!(max.len() > 5);
    assert_eq!(run_query_at("q5", 2, 1000), sorted(expected));
}

#[test]
fn q4_averages_winning_bids_per_category_with_updates() {
    use std::collections::BTreeMap;
    let all = events();
    let auctions: Vec<_> = all
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    let bids = bids();
    // (auction, category) -> max price of its bids within its lifetime
    let mut finals: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for a in &auctions {
        for b in bids.iter().filter(|b| b.auction == a.id) {
            if a.date_time <= b.date_time && b.date_time <= a.expires {
                let m = finals.entry((a.id, a.category)).or_insert(i64::MIN);
                *m = (*m).max(b.price);
            }
        }
    }
    let mut per_category: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (&(_, category), &price) in &finals {
        let e = per_category.entry(category).or_default();
        e.0 += price;
        e.1 += 1;
    }
    let mut expected: Vec<serde_json::Value> = per_category
        .into_iter()
        .map(|(category, (sum, n))| serde_json::json!({"id": category, "final": sum / n}))
        .collect();
    expected.sort_by_key(|v| v.to_string());
    assert!(!expected.is_empty());
    assert_eq!(run_changelog("q4", 2), expected);
}

#[test]
fn q8_finds_new_users_who_created_auctions_in_the_same_window() {
    use std::collections::BTreeSet;
    // 20 000 events at 1 000 per second: two 10 s windows.
    let all = events_at(1000);
    let window = |t: i64| t - t.rem_euclid(10_000);
    let persons: BTreeSet<(i64, String, i64)> = all
        .iter()
        .filter_map(|e| match e {
            Event::Person(p) => Some((p.id, p.name.clone(), window(p.date_time))),
            _ => None,
        })
        .collect();
    let sellers: BTreeSet<(i64, i64)> = all
        .iter()
        .filter_map(|e| match e {
            Event::Auction(a) => Some((a.seller, window(a.date_time))),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = persons
        .iter()
        .filter(|(id, _, w)| sellers.contains(&(*id, *w)))
        .map(|(id, name, w)| format!("{id},{name},{}", ts(*w)))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(run_query_at("q8", 2, 1000), sorted(expected));
}

#[test]
fn q16_reports_channel_statistics_with_updates() {
    use std::collections::{BTreeMap, BTreeSet};
    #[derive(Default)]
    struct Group {
        minute: String,
        bids: [i64; 4],
        bidders: [BTreeSet<i64>; 4],
        auctions: [BTreeSet<i64>; 4],
    }
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for b in bids() {
        let g = groups
            .entry((b.channel.clone(), day(b.date_time)))
            .or_default();
        let minute = chrono::DateTime::from_timestamp_millis(b.date_time)
            .unwrap()
            .format("%H:%M")
            .to_string();
        if minute > g.minute {
            g.minute = minute;
        }
        let rank = if b.price < 10_000 {
            1
        } else if b.price < 1_000_000 {
            2
        } else {
            3
        };
        for r in [0, rank] {
            g.bids[r] += 1;
            g.bidders[r].insert(b.bidder);
            g.auctions[r].insert(b.auction);
        }
    }
    let mut expected: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|((channel, d), g)| {
            serde_json::json!({
                "channel": channel, "day": d, "minute": g.minute,
                "total_bids": g.bids[0], "rank1_bids": g.bids[1], "rank2_bids": g.bids[2], "rank3_bids": g.bids[3],
                "total_bidders": g.bidders[0].len(), "rank1_bidders": g.bidders[1].len(),
                "rank2_bidders": g.bidders[2].len(), "rank3_bidders": g.bidders[3].len(),
                "total_auctions": g.auctions[0].len(), "rank1_auctions": g.auctions[1].len(),
                "rank2_auctions": g.auctions[2].len(), "rank3_auctions": g.auctions[3].len(),
            })
        })
        .collect();
    expected.sort_by_key(|v| v.to_string());
    assert!(expected.len() > 100);
    assert_eq!(run_changelog("q16", 2), expected);
}

/// Runs query `q` on CSV files written from the generator (the benchmark's CSV mode).
fn run_query_csv(q: &str, parallelism: u32) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    let options: BTreeMap<String, String> =
        [("first-event.rate", "10000"), ("events.num", "20000")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let generator = NexmarkGenerator::new(NexmarkConfig::from_options(&options).unwrap()).unwrap();
    sluice_connectors::nexmark::csv::write_csv_files(&generator, EVENTS, &csv).unwrap();
    let mut vars = vars_at(10_000);
    vars.insert("CSV_DIR".into(), csv.display().to_string());
    let query = format!("{q}.sql");
    let (_out_dir, out) = run_files(&["ddl_csv.sql", &query], parallelism, "csv", vars);
    committed_lines(&out)
}

#[test]
fn queries_read_the_same_results_from_csv_files_as_from_the_generator() {
    for (q, p) in [("q0", 2), ("q3", 2), ("q20", 1)] {
        assert_eq!(run_query_csv(q, p), run_query(q, p), "{q}");
    }
}
