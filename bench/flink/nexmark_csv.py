#!/usr/bin/env python3
"""Run Nexmark SQL queries on Apache Flink (PyFlink, local MiniCluster) over CSV files.

The CSV files (person.csv, auction.csv, bid.csv) are the ones `sluice-bench nexmark --csv DIR`
writes. The table DDL is sql/nexmark/ddl_csv.sql and the queries sql/nexmark/qN.sql, with
${CSV_DIR} and ${SINK} (= blackhole) substituted.

Timing covers the job only: it starts right before execute_sql() of the INSERT (so it includes
planning and job submission, a few hundred ms) and ends when TableResult.wait() returns, i.e.
when the bounded job has finished. JVM start-up and the DDL are excluded.

With --warmup-dir SMALL_DIR each query first runs once untimed on a small input in the same
JVM (the first job in a JVM pays several seconds of class loading, planner and JIT warm-up).

Prints one CSV line per query on stdout: query,parallelism,events,seconds,events_per_s
(events = total data lines of the three CSV files, counted once). Flink's own net job runtime
is printed on stderr for reference.
"""
import argparse
import os
import sys
import time
import warnings

# apache-beam (a PyFlink dependency) imports the deprecated pkg_resources; silence that warning.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

CSV_FILES = ("person.csv", "auction.csv", "bid.csv")
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_SQL_DIR = os.path.join(REPO_ROOT, "sql", "nexmark")


def count_lines(path):
    """Count data lines of a file (a last line without a newline counts too)."""
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            chunk = f.read(16 << 20)
            if not chunk:
                break
            n += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        n += 1
    return n


def split_statements(sql):
    """Split a SQL script into statements on ';' at line ends, dropping '--' comment lines."""
    lines = [l for l in sql.splitlines() if not l.strip().startswith("--")]
    text = "\n".join(lines)
    return [s.strip() for s in text.split(";") if s.strip()]


def read_sql(path, subst):
    with open(path) as f:
        sql = f.read()
    for key, value in subst.items():
        sql = sql.replace("${%s}" % key, value)
    return split_statements(sql)


def run_query(query, csv_dir, parallelism, sql_dir, extra_conf):
    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    conf = t_env.get_config()
    conf.set("parallelism.default", str(parallelism))
    conf.set("pipeline.name", "nexmark-%s-csv-p%d" % (query, parallelism))
    for kv in extra_conf:
        k, v = kv.split("=", 1)
        conf.set(k.strip(), v.strip())

    ddl = read_sql(os.path.join(sql_dir, "ddl_csv.sql"), {"CSV_DIR": csv_dir})
    stmts = read_sql(os.path.join(sql_dir, query + ".sql"), {"SINK": "blackhole"})
    for stmt in ddl:
        t_env.execute_sql(stmt)
    inserts = [s for s in stmts if s.lstrip().upper().startswith("INSERT")]
    for stmt in stmts:
        if stmt not in inserts:
            t_env.execute_sql(stmt)
    if len(inserts) != 1:
        raise RuntimeError("%s: expected one INSERT statement, found %d" % (query, len(inserts)))

    start = time.perf_counter()
    result = t_env.execute_sql(inserts[0])
    result.wait()
    seconds = time.perf_counter() - start

    net = None
    try:
        job_result = result.get_job_client().get_job_execution_result().result()
        net = job_result.get_net_runtime() / 1000.0
    except Exception:  # the runtime is informational only
        pass
    return seconds, net


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv-dir", required=True, help="directory with person.csv, auction.csv, bid.csv")
    p.add_argument("--query", required=True, nargs="+",
                   help="query names, e.g. q0 or q0 q1 q2 or q0,q1,q2")
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument("--sql-dir", default=DEFAULT_SQL_DIR, help="default: %(default)s")
    p.add_argument("--conf", action="append", default=[],
                   help="extra Flink option KEY=VALUE (repeatable); none by default")
    p.add_argument("--warmup-dir", default=None,
                   help="if given, run each query once untimed on the CSV files of this (small) "
                        "directory first, in the same JVM, so that class loading, JIT and planner "
                        "warm-up are not timed")
    p.add_argument("--no-header", action="store_true")
    args = p.parse_args()

    csv_dir = os.path.abspath(args.csv_dir)
    queries = [q for arg in args.query for q in arg.split(",") if q]
    for name in CSV_FILES:
        if not os.path.isfile(os.path.join(csv_dir, name)):
            sys.exit("missing %s in %s" % (name, csv_dir))
    events = sum(count_lines(os.path.join(csv_dir, name)) for name in CSV_FILES)

    if not args.no_header:
        print("query,parallelism,events,seconds,events_per_s", flush=True)
    failed = 0
    for q in queries:
        try:
            if args.warmup_dir:
                run_query(q, os.path.abspath(args.warmup_dir), args.parallelism, args.sql_dir, args.conf)
            seconds, net = run_query(q, csv_dir, args.parallelism, args.sql_dir, args.conf)
        except Exception as e:  # report and go on with the next query
            failed += 1
            print("%s: FAILED: %s" % (q, e), file=sys.stderr, flush=True)
            continue
        print("%s,%d,%d,%.3f,%.0f" % (q, args.parallelism, events, seconds, events / seconds),
              flush=True)
        if net is not None:
            print("# %s: Flink net job runtime %.3f s (%.0f events/s)" % (q, net, events / net),
                  file=sys.stderr, flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
