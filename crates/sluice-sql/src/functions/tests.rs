//! End-to-end checks: each function is planned from SQL text by DataFusion (name lookup,
//! type coercion, planning-time validation) and evaluated on a record batch.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::TimestampMillisecondArray;
use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{plan_err, Result, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::ContextProvider;
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{
    AggregateUDF, HigherOrderUDF, LogicalPlan, ScalarUDF, TableSource, WindowUDF,
};
use datafusion_optimizer::analyzer::Analyzer;
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::create_physical_expr;
use datafusion_sql::parser::DFParser;
use datafusion_sql::planner::SqlToRel;
use sluice_core::time::{Clock, ManualClock};

use super::args::harness::{some, texts};
use super::flink_scalar_functions_with_clock;

/// A catalog with one table `t` and DataFusion's functions overlaid by Sluice's.
struct Catalog {
    functions: HashMap<String, Arc<ScalarUDF>>,
    table: Arc<dyn TableSource>,
    options: ConfigOptions,
}

impl Catalog {
    fn new(schema: SchemaRef, clock: Arc<dyn Clock>) -> Self {
        let mut functions = HashMap::new();
        let defaults = datafusion_functions::all_default_functions();
        for udf in defaults
            .into_iter()
            .chain(flink_scalar_functions_with_clock(clock))
        {
            for alias in udf.aliases() {
                functions.insert(alias.clone(), Arc::clone(&udf));
            }
            functions.insert(udf.name().to_owned(), udf);
        }
        Catalog {
            functions,
            table: Arc::new(LogicalTableSource::new(schema)),
            options: ConfigOptions::default(),
        }
    }
}

impl ContextProvider for Catalog {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        if name.table() == "t" {
            Ok(Arc::clone(&self.table))
        } else {
            plan_err!("no table {name}")
        }
    }
    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(name).cloned()
    }
    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }
    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }
    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }
    fn get_variable_type(&self, _names: &[String]) -> Option<DataType> {
        None
    }
    fn options(&self) -> &ConfigOptions {
        &self.options
    }
    fn udf_names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }
    fn higher_order_function_names(&self) -> Vec<String> {
        vec![]
    }
    fn udaf_names(&self) -> Vec<String> {
        vec![]
    }
    fn udwf_names(&self) -> Vec<String> {
        vec![]
    }
}

/// Three rows: an id, a string, a timestamp, epoch seconds and a small integer.
fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("secs", DataType::Int64, true),
        Field::new("n", DataType::Int32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![
            Some("2024-03-05 07:08:09"),
            Some("a,b,c"),
            None,
        ])),
        Arc::new(TimestampMillisecondArray::from(vec![
            Some(1_709_622_489_123),
            Some(0),
            None,
        ])),
        Arc::new(Int64Array::from(vec![Some(1_709_622_489), Some(-1), None])),
        Arc::new(Int32Array::from(vec![Some(-7), Some(7), None])),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Plans `SELECT <exprs> FROM t` and evaluates every projected column on [`batch`].
fn select(exprs: &str) -> Result<Vec<Vec<Option<String>>>> {
    let batch = batch();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_500));
    let catalog = Catalog::new(batch.schema(), clock);
    let mut statements = DFParser::parse_sql(&format!("SELECT {exprs} FROM t"))?;
    let statement = statements.pop_front().unwrap();
    let plan = SqlToRel::new(&catalog).statement_to_plan(statement)?;
    let plan = Analyzer::new().execute_and_check(plan, &catalog.options, |_, _| {})?;
    let LogicalPlan::Projection(projection) = plan else {
        panic!("expected a projection, got {plan}");
    };
    // As DataFusion's optimizer would, simplify first: some built-ins (`nvl`) only exist
    // as rewrites and refuse to run unsimplified.
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::clone(projection.input.schema()))
            .build(),
    );
    let props = ExecutionProps::new();
    projection
        .expr
        .iter()
        .map(|e| {
            let e = simplifier.simplify(e.clone())?;
            let physical = create_physical_expr(
                &e,
                projection.input.schema(),
                &props,
                &PhysicalPlanningContext::default(),
            )?;
            let out = physical.evaluate(&batch)?.into_array(batch.num_rows())?;
            Ok(texts(&out))
        })
        .collect()
}

#[test]
fn time_functions_plan_and_run_from_sql() {
    let out = select(
        "TO_TIMESTAMP_LTZ(secs, 0), TO_TIMESTAMP(s), \
         DATE_FORMAT(ts, 'yyyy-MM-dd''T''HH:mm:ss.SSS'), UNIX_TIMESTAMP(), \
         UNIX_TIMESTAMP(s), FROM_UNIXTIME(secs), FROM_UNIXTIME(secs, 'yyyyMMdd')",
    )
    .unwrap();
    assert_eq!(
        out[0],
        some(&[
            Some("2024-03-05T07:08:09Z"),
            Some("1969-12-31T23:59:59Z"),
            None
        ])
    );
    assert_eq!(out[1], some(&[Some("2024-03-05T07:08:09"), None, None]));
    assert_eq!(
        out[2],
        some(&[
            Some("2024-03-05T07:08:09.123"),
            Some("1970-01-01T00:00:00.000"),
            None
        ])
    );
    assert_eq!(out[3], some(&[Some("1700000000"); 3]));
    let min = i64::MIN.to_string();
    assert_eq!(out[4], some(&[Some("1709622489"), Some(&min), None]));
    assert_eq!(
        out[5],
        some(&[
            Some("2024-03-05 07:08:09"),
            Some("1969-12-31 23:59:59"),
            None
        ])
    );
    assert_eq!(out[6], some(&[Some("20240305"), Some("19691231"), None]));
}

#[test]
fn string_and_math_functions_plan_and_run_from_sql() {
    let out = select(
        "SPLIT_INDEX(s, ',', 1), REGEXP_EXTRACT(s, '(\\d+):(\\d+)', 2), LOCATE('-', s), \
         LOCATE('-', s, 6), HASH_CODE(s), MOD(n, 3), MOD(secs, n)",
    )
    .unwrap();
    assert_eq!(out[0], some(&[None, Some("b"), None]));
    assert_eq!(out[1], some(&[Some("08"), None, None]));
    assert_eq!(out[2], some(&[Some("5"), Some("0"), None]));
    assert_eq!(out[3], some(&[Some("8"), Some("0"), None]));
    // Java: Math.abs("2024-03-05 07:08:09".hashCode()) and Math.abs("a,b,c".hashCode()).
    assert_eq!(out[4], some(&[Some("520714010"), Some("90987982"), None]));
    assert_eq!(out[5], some(&[Some("-1"), Some("1"), None]));
    assert_eq!(out[6], some(&[Some("1"), Some("-1"), None]));
}

#[test]
fn sluice_functions_replace_datafusion_ones_of_the_same_name() {
    // DataFusion's DATE_FORMAT takes chrono patterns ('%Y'); Sluice's takes Java ones.
    let out = select("DATE_FORMAT(ts, 'yyyy'), FROM_UNIXTIME(0)").unwrap();
    assert_eq!(out[0], some(&[Some("2024"), Some("1970"), None]));
    assert_eq!(out[1], some(&[Some("1970-01-01 00:00:00"); 3]));
}

#[test]
fn bad_literals_fail_at_planning_with_the_function_name() {
    for (sql, expected) in [
        (
            "DATE_FORMAT(ts, 'YYYY')",
            "DATE_FORMAT: unsupported letters 'YYYY'",
        ),
        (
            "TO_TIMESTAMP_LTZ(secs, 6)",
            "TO_TIMESTAMP_LTZ: precision 6 is not supported",
        ),
        (
            "REGEXP_EXTRACT(s, '(?=x)')",
            "REGEXP_EXTRACT: cannot compile",
        ),
        ("MOD(s, 2)", "MOD: argument 1 must be an integer"),
        (
            "SPLIT_INDEX(s, ',')",
            "SPLIT_INDEX expects 3 arguments, got 2",
        ),
    ] {
        let err = select(sql).unwrap_err().to_string();
        assert!(err.contains(expected), "{sql}: {err}");
    }
}

#[test]
fn datafusion_builtins_cover_the_flink_functions_not_reimplemented() {
    // CHAR_LENGTH counts code points, IFNULL replaces NULL, and two-argument INSTR is a
    // 1-based position (1 for an empty needle, 0 if absent), as in Flink.
    let out = select(
        "CHAR_LENGTH('grüß'), IFNULL(s, 'x'), INSTR('grüß', 'ß'), INSTR('abc', ''), \
         INSTR('abc', 'z')",
    )
    .unwrap();
    assert_eq!(out[0], some(&[Some("4"); 3]));
    assert_eq!(
        out[1],
        some(&[Some("2024-03-05 07:08:09"), Some("a,b,c"), Some("x")])
    );
    assert_eq!(out[2], some(&[Some("4"); 3]));
    assert_eq!(out[3], some(&[Some("1"); 3]));
    assert_eq!(out[4], some(&[Some("0"); 3]));
}
