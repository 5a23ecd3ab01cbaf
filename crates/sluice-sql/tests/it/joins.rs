//! Changelog operators against a sequential reference on random inputs: outer, semi and
//! anti joins, of append-only inputs and of updating ones (the changelogs of `GROUP
//! BY`s), with NULL keys, other conditions and random parallelism; and aggregations of
//! a changelog whose groups empty out (deleted, not left at zero) and whose `MIN`, `MAX`
//! and `COUNT(DISTINCT)` retract, and a Top-N of a changelog. The job's Debezium changelog,
//! applied in order, must end in the reference's rows and never retract a row it did
//! not add.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

use crate::output::apply_changelog;

/// Rows (key, value); a `None` key is NULL.
type Rows = Vec<(Option<i64>, i64)>;

/// The queries, with the columns they output.
const QUERIES: [&str; 9] = [
    // An updating left input, outer.
    "SELECT L.k, L.c, R.b FROM (SELECT k, COUNT(*) AS c FROM l GROUP BY k) L
     LEFT JOIN r R ON L.k = R.k",
    // Two updating inputs, full outer, with another condition.
    "SELECT L.k AS lk, L.s, R.k AS rk, R.m FROM (SELECT k, SUM(a) AS s FROM l GROUP BY k) L
     FULL JOIN (SELECT k, MAX(b) AS m FROM r GROUP BY k) R ON L.k = R.k AND L.s > R.m",
    // Append-only inputs, anti join with another condition.
    "SELECT k, a FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.k = l.k AND r.b > l.a)",
    // An updating left input, semi join.
    "SELECT k, c FROM (SELECT k, COUNT(*) AS c FROM l GROUP BY k) WHERE k IN (SELECT k FROM r WHERE b > 4)",
    // Append-only inputs, right outer.
    "SELECT l.a, r.k, r.b FROM l RIGHT JOIN r ON l.k = r.k",
    // An updating right input, inner.
    "SELECT l.k, l.a, R.n FROM l JOIN (SELECT k, COUNT(*) AS n FROM r GROUP BY k) R ON l.k = R.k",
    // An aggregation of a changelog: groups whose rows are all retracted disappear.
    "SELECT c, COUNT(*) AS n, SUM(k) AS s FROM (SELECT k, COUNT(*) AS c FROM l GROUP BY k) GROUP BY c",
    // MIN and MAX of a changelog: retracting the extreme reveals the next value.
    "SELECT c, MIN(k) AS lo, MAX(k) AS hi, COUNT(DISTINCT MOD(k, 2)) AS parities
     FROM (SELECT k, COUNT(*) AS c FROM l GROUP BY k) GROUP BY c",
    // A Top-N of a changelog: a retracted top row lets the next one up.
    "SELECT p, k, c, rn FROM (
       SELECT p, k, c, ROW_NUMBER() OVER (PARTITION BY p ORDER BY c ASC, k ASC) AS rn
       FROM (SELECT MOD(k, 2) AS p, k, COUNT(*) AS c FROM l GROUP BY k))
     WHERE rn <= 2",
];

const COLUMNS: [&str; 9] = [
    "k BIGINT, c BIGINT, b BIGINT",
    "lk BIGINT, s BIGINT, rk BIGINT, m BIGINT",
    "k BIGINT, a BIGINT",
    "k BIGINT, c BIGINT",
    "a BIGINT, k BIGINT, b BIGINT",
    "k BIGINT, a BIGINT, n BIGINT",
    "c BIGINT, n BIGINT, s BIGINT",
    "c BIGINT, lo BIGINT, hi BIGINT, parities BIGINT",
    "p BIGINT, k BIGINT, c BIGINT, rn BIGINT",
];

/// A JSON row of the sink, NULLs left out (as the JSON writer does).
fn row(fields: &[(&str, Option<i64>)]) -> Value {
    let mut m = Map::new();
    for (name, v) in fields {
        if let Some(v) = v {
            m.insert((*name).to_string(), json!(v));
        }
    }
    Value::Object(m)
}

fn groups<T>(rows: &Rows, init: T, f: impl Fn(&mut T, i64)) -> BTreeMap<Option<i64>, T>
where
    T: Clone,
{
    let mut out = BTreeMap::new();
    for &(k, v) in rows {
        f(out.entry(k).or_insert_with(|| init.clone()), v);
    }
    out
}

/// Whether two keys join (NULL never does).
fn eq(a: Option<i64>, b: Option<i64>) -> bool {
    a.is_some() && a == b
}

fn reference(query: usize, l: &Rows, r: &Rows) -> Vec<Value> {
    let mut out = Vec::new();
    match query {
        0 => {
            for (k, c) in groups(l, 0, |c, _| *c += 1) {
                let matches: Vec<&(Option<i64>, i64)> = r.iter().filter(|x| eq(k, x.0)).collect();
                if matches.is_empty() {
                    out.push(row(&[("k", k), ("c", Some(c))]));
                }
                for m in matches {
                    out.push(row(&[("k", k), ("c", Some(c)), ("b", Some(m.1))]));
                }
            }
        }
        1 => {
            let ls = groups(l, 0, |s, v| *s += v);
            let rs = groups(r, i64::MIN, |m, v| *m = (*m).max(v));
            let joins = |lk: Option<i64>, s: i64, rk: Option<i64>, m: i64| eq(lk, rk) && s > m;
            for (&lk, &s) in &ls {
                let mut matched = false;
                for (&rk, &m) in &rs {
                    if joins(lk, s, rk, m) {
                        matched = true;
                        out.push(row(&[
                            ("lk", lk),
                            ("s", Some(s)),
                            ("rk", rk),
                            ("m", Some(m)),
                        ]));
                    }
                }
                if !matched {
                    out.push(row(&[("lk", lk), ("s", Some(s))]));
                }
            }
            for (&rk, &m) in &rs {
                if !ls.iter().any(|(&lk, &s)| joins(lk, s, rk, m)) {
                    out.push(row(&[("rk", rk), ("m", Some(m))]));
                }
            }
        }
        2 => {
            for &(k, a) in l {
                if !r.iter().any(|&(rk, b)| eq(k, rk) && b > a) {
                    out.push(row(&[("k", k), ("a", Some(a))]));
                }
            }
        }
        3 => {
            for (k, c) in groups(l, 0, |c, _| *c += 1) {
                if r.iter().any(|&(rk, b)| eq(k, rk) && b > 4) {
                    out.push(row(&[("k", k), ("c", Some(c))]));
                }
            }
        }
        4 => {
            for &(rk, b) in r {
                let matches: Vec<i64> = l.iter().filter(|x| eq(x.0, rk)).map(|x| x.1).collect();
                if matches.is_empty() {
                    out.push(row(&[("k", rk), ("b", Some(b))]));
                }
                for a in matches {
                    out.push(row(&[("a", Some(a)), ("k", rk), ("b", Some(b))]));
                }
            }
        }
        6 => {
            let per_count = groups(l, 0, |c, _| *c += 1).into_iter().fold(
                BTreeMap::<i64, (i64, Option<i64>)>::new(),
                |mut m, (k, c)| {
                    let e = m.entry(c).or_insert((0, None));
                    e.0 += 1;
                    if let Some(k) = k {
                        e.1 = Some(e.1.unwrap_or(0) + k);
                    }
                    m
                },
            );
            for (c, (n, s)) in per_count {
                out.push(row(&[("c", Some(c)), ("n", Some(n)), ("s", s)]));
            }
        }
        7 => {
            let mut per_count: BTreeMap<i64, Vec<Option<i64>>> = BTreeMap::new();
            for (k, c) in groups(l, 0, |c, _| *c += 1) {
                per_count.entry(c).or_default().push(k);
            }
            for (c, keys) in per_count {
                let present = keys.iter().flatten();
                let (lo, hi) = (
                    present.clone().min().copied(),
                    present.clone().max().copied(),
                );
                let parities = present
                    .map(|k| k % 2)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len() as i64;
                out.push(row(&[
                    ("c", Some(c)),
                    ("lo", lo),
                    ("hi", hi),
                    ("parities", Some(parities)),
                ]));
            }
        }
        8 => {
            // Per parity (NULL keys form the NULL partition), by count then key, NULL
            // last. A key whose count grows can leave the top two: the next one moves up.
            let mut parts: BTreeMap<Option<i64>, Vec<(i64, Option<i64>)>> = BTreeMap::new();
            for (k, c) in groups(l, 0, |c, _| *c += 1) {
                parts.entry(k.map(|k| k % 2)).or_default().push((c, k));
            }
            for (p, mut rows) in parts {
                rows.sort_by(|a, b| {
                    a.0.cmp(&b.0).then_with(|| match (a.1, b.1) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    })
                });
                for (rank, (c, k)) in rows.into_iter().take(2).enumerate() {
                    out.push(row(&[
                        ("p", p),
                        ("k", k),
                        ("c", Some(c)),
                        ("rn", Some(rank as i64 + 1)),
                    ]));
                }
            }
        }
        _ => {
            let counts = groups(r, 0, |n, _| *n += 1);
            for &(k, a) in l {
                if let Some((_, &n)) = counts.iter().find(|(&rk, _)| eq(k, rk)) {
                    out.push(row(&[("k", k), ("a", Some(a)), ("n", Some(n))]));
                }
            }
        }
    }
    out.sort_by_key(|v| v.to_string());
    out
}

fn write_rows(path: &Path, rows: &Rows) {
    let text: String = rows
        .iter()
        .map(|(k, v)| match k {
            Some(k) => format!("{k},{v}\n"),
            None => format!(",{v}\n"),
        })
        .collect();
    fs::write(path, text).unwrap();
}

fn run(dir: &Path, query: usize, l: &Rows, r: &Rows, parallelism: u32) -> Vec<Value> {
    write_rows(&dir.join("l.csv"), l);
    write_rows(&dir.join("r.csv"), r);
    let out = dir.join("out");
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
         CREATE TABLE l (k BIGINT, a BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{l}', 'format' = 'csv');
         CREATE TABLE r (k BIGINT, b BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'csv');
         CREATE TABLE o ({columns})
           WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'debezium-json');
         INSERT INTO o {query};",
        l = dir.join("l.csv").display(),
        r = dir.join("r.csv").display(),
        out = out.display(),
        columns = COLUMNS[query],
        query = QUERIES[query],
    );
    let mut session = SqlSession::new();
    session
        .execute_script(&sql, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let (rows, _) = apply_changelog(&out);
    let mut values: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    values.sort_by_key(|v| v.to_string());
    values
}

fn rows_strategy() -> impl Strategy<Value = Rows> {
    prop::collection::vec((prop::option::weighted(0.9, 0i64..5), 0i64..10), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(54))]

    #[test]
    fn changelog_joins_equal_a_sequential_reference(
        query in 0usize..QUERIES.len(),
        l in rows_strategy(),
        r in rows_strategy(),
        parallelism in 1u32..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let got = run(dir.path(), query, &l, &r, parallelism);
        prop_assert_eq!(got, reference(query, &l, &r));
    }
}
