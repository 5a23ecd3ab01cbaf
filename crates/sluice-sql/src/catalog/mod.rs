//! The catalog of a SQL session: tables, views and functions, and the bridge to
//! DataFusion's planner (`ContextProvider`), analyzer and optimizer.
//!
//! Identifiers are case-sensitive as in Flink; function names are not.

pub mod table;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{Column, DFSchema, TableReference};
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::{
    AggregateUDF, Expr, HigherOrderUDF, LogicalPlan, LogicalPlanBuilder, ScalarUDF, TableSource,
    WindowUDF,
};
use datafusion_optimizer::{Analyzer, Optimizer, OptimizerContext};
use datafusion_sql::planner::{ParserOptions, PlannerContext, SqlToRel};
use datafusion_sql::sqlparser::ast::{Query, Statement as AstStatement};

pub use table::{CatalogTable, LookupTableSource, PhysicalTable, TableScanSource, ViewSource};
pub use window::{WindowKind, WindowTableFunction};

use crate::error::{Error, Result};
use crate::parser::{ColumnKind, TableDef};

/// The field metadata key and value of a table's event time attribute (the column of its
/// `WATERMARK FOR`).
pub const ROWTIME_METADATA: (&str, &str) = ("sluice.time", "rowtime");

/// Whether `field` is an event time attribute.
pub fn is_rowtime(field: &Field) -> bool {
    field.metadata().get(ROWTIME_METADATA.0).map(String::as_str) == Some(ROWTIME_METADATA.1)
}

/// Tables, views and functions known to a SQL session.
pub struct Catalog {
    tables: HashMap<String, Arc<CatalogTable>>,
    views: HashMap<String, Arc<ViewSource>>,
    scalar: HashMap<String, Arc<ScalarUDF>>,
    aggregate: HashMap<String, Arc<AggregateUDF>>,
    window: HashMap<String, Arc<WindowUDF>>,
    /// Functions registered from Rust, by identifier, for `CREATE FUNCTION`.
    registered: HashMap<String, Arc<ScalarUDF>>,
    expr_planners: Vec<Arc<dyn ExprPlanner>>,
    options: ConfigOptions,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .field("views", &self.views.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

fn parser_options() -> ParserOptions {
    ParserOptions {
        // Flink reads `0.5` as a DECIMAL and keeps identifiers as written.
        parse_float_as_decimal: true,
        enable_ident_normalization: false,
        support_varchar_with_length: true,
        enable_options_value_normalization: false,
        collect_spans: false,
        map_string_types_to_utf8view: false,
        default_null_ordering: datafusion_sql::planner::NullOrdering::NullsMax,
    }
}

impl Catalog {
    /// An empty catalog with DataFusion's and Flink's built-in functions.
    pub fn new() -> Self {
        let mut options = ConfigOptions::default();
        options.sql_parser.parse_float_as_decimal = true;
        options.sql_parser.enable_ident_normalization = false;
        options.sql_parser.map_string_types_to_utf8view = false;
        options.execution.time_zone = Some("+00:00".to_string());
        let mut scalar = HashMap::new();
        for f in datafusion_functions::all_default_functions()
            .into_iter()
            .chain(datafusion_functions_nested::all_default_nested_functions())
            .chain(crate::functions::flink_scalar_functions())
            .chain(crate::functions::group_window::group_windows())
        {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                scalar.insert(name.to_ascii_lowercase(), Arc::clone(&f));
            }
        }
        let mut aggregate = HashMap::new();
        for f in datafusion_functions_aggregate::all_default_aggregate_functions()
            .into_iter()
            .chain(crate::functions::group_window::group_window_properties())
        {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                aggregate.insert(name.to_ascii_lowercase(), Arc::clone(&f));
            }
        }
        let mut window = HashMap::new();
        for f in datafusion_functions_window::all_default_window_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                window.insert(name.to_ascii_lowercase(), Arc::clone(&f));
            }
        }
        let expr_planners: Vec<Arc<dyn ExprPlanner>> = vec![
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
            Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
            Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
            Arc::new(datafusion_functions_aggregate::planner::AggregateFunctionPlanner),
            Arc::new(datafusion_functions_window::planner::WindowFunctionPlanner),
        ];
        // Nexmark's user function ships with Sluice, as its jar does with Flink's nexmark.
        let mut registered = HashMap::new();
        registered.insert(
            crate::functions::nexmark::COUNT_CHAR_IDENTIFIER.to_string(),
            Arc::new(ScalarUDF::from(
                crate::functions::nexmark::CountChar::default(),
            )),
        );
        Catalog {
            tables: HashMap::new(),
            views: HashMap::new(),
            scalar,
            aggregate,
            window,
            registered,
            expr_planners,
            options,
        }
    }

    /// Makes a scalar function available to `CREATE FUNCTION name AS 'identifier'`.
    pub fn register_function(&mut self, identifier: &str, function: Arc<ScalarUDF>) {
        self.registered.insert(identifier.to_string(), function);
    }

    /// `CREATE FUNCTION name AS 'identifier'`.
    ///
    /// # Errors
    /// When nothing was registered under `identifier`.
    pub fn create_function(&mut self, name: &str, identifier: &str) -> Result<()> {
        let f = self.registered.get(identifier).ok_or_else(|| {
            let mut known: Vec<&String> = self.registered.keys().collect();
            known.sort();
            Error::plan(format!(
                "no function is registered as `{identifier}` (registered: {known:?}); register \
                 it from Rust with `SqlSession::register_function`"
            ))
        })?;
        let f = Arc::clone(f);
        self.scalar.insert(name.to_ascii_lowercase(), f);
        Ok(())
    }

    /// The table `name`.
    pub fn table(&self, name: &str) -> Option<&Arc<CatalogTable>> {
        self.tables.get(name)
    }

    fn exists(&self, name: &str) -> bool {
        self.tables.contains_key(name) || self.views.contains_key(name)
    }

    fn sql_to_rel(&self) -> SqlToRel<'_, Self> {
        SqlToRel::new_with_options(self, parser_options())
    }

    /// Analyzes (type coercion) and optimizes a plan.
    ///
    /// # Errors
    /// Type errors and invalid plans.
    pub fn analyze_and_optimize(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let analyzed = self.analyze(plan)?;
        table::check_lookup_joins(&analyzed)?;
        let optimizer = Optimizer::new();
        let context = OptimizerContext::new_with_config_options(Arc::new(self.options.clone()));
        Ok(optimizer.optimize(analyzed, &context, |_, _| {})?)
    }

    fn analyze(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        Ok(Analyzer::new().execute_and_check(plan, &self.options, |_, _| {})?)
    }

    /// Plans a query (not yet analyzed).
    ///
    /// # Errors
    /// Unknown tables, columns or functions.
    pub fn plan_query(&self, query: Box<Query>) -> Result<LogicalPlan> {
        let plan = self
            .sql_to_rel()
            .sql_statement_to_plan(AstStatement::Query(query))?;
        name_field_accesses(plan)
    }

    /// `CREATE VIEW`.
    ///
    /// # Errors
    /// When the name is taken or the query does not plan.
    pub fn create_view(&mut self, name: &str, columns: &[String], query: Box<Query>) -> Result<()> {
        if self.exists(name) {
            return Err(Error::plan(format!(
                "a table or view `{name}` already exists"
            )));
        }
        let mut plan = self.plan_query(query)?;
        if !columns.is_empty() {
            let fields = plan.schema().fields();
            if fields.len() != columns.len() {
                return Err(Error::plan(format!(
                    "view `{name}` names {} columns but its query has {}",
                    columns.len(),
                    fields.len()
                )));
            }
            let exprs: Vec<Expr> = plan
                .schema()
                .iter()
                .zip(columns)
                .map(|((q, f), c)| Expr::Column(Column::new(q.cloned(), f.name())).alias(c))
                .collect();
            plan = LogicalPlanBuilder::from(plan).project(exprs)?.build()?;
        }
        // Check that it analyzes now, so errors point at the view.
        self.analyze(plan.clone())?;
        self.views
            .insert(name.to_string(), Arc::new(ViewSource { plan }));
        Ok(())
    }

    /// `CREATE TABLE`: plans computed columns and the watermark.
    ///
    /// # Errors
    /// When the name is taken, a computed column or the watermark does not plan, or the
    /// watermark column is not a timestamp.
    pub fn create_table(&mut self, def: TableDef) -> Result<()> {
        if self.exists(&def.name) {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(Error::plan(format!(
                "a table or view `{}` already exists",
                def.name
            )));
        }
        let physical_schema = table::physical_schema(&def);
        let physical = Arc::new(PhysicalTable {
            name: def.name.clone(),
            schema: Arc::clone(&physical_schema),
        });
        let qualifier = TableReference::bare(def.name.clone());
        let physical_df = DFSchema::try_from_qualified_schema(qualifier.clone(), &physical_schema)?;
        let mut exprs = Vec::with_capacity(def.columns.len());
        for c in &def.columns {
            let expr = match &c.kind {
                ColumnKind::Computed(ast) => {
                    let e = self
                        .sql_to_rel()
                        .sql_to_expr(
                            ast.as_ref().clone(),
                            &physical_df,
                            &mut PlannerContext::new(),
                        )
                        .map_err(|e| {
                            Error::plan(format!(
                                "computed column `{}`: {}",
                                c.name,
                                e.strip_backtrace()
                            ))
                        })?;
                    e.alias(&c.name)
                }
                _ => Expr::Column(Column::new(Some(qualifier.clone()), &c.name)),
            };
            exprs.push(expr);
        }
        let plan = LogicalPlanBuilder::scan(qualifier.clone(), physical, None)?
            .project(exprs)?
            .build()?;
        let plan = self.analyze(plan)?;
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let (watermark, rowtime) = match &def.watermark {
            None => (None, None),
            Some(w) => {
                let rowtime = schema.index_of(&w.column).map_err(|_| {
                    Error::plan(format!(
                        "WATERMARK FOR `{}`: no such column in table `{}`",
                        w.column, def.name
                    ))
                })?;
                if !table::is_timestamp(schema.field(rowtime).data_type()) {
                    return Err(Error::plan(format!(
                        "WATERMARK FOR `{}`: the column has type {}; a time attribute must be \
                         TIMESTAMP(3) or TIMESTAMP_LTZ(3) (convert with a computed column, e.g. \
                         `ts AS TO_TIMESTAMP_LTZ(ms, 3)`)",
                        w.column,
                        schema.field(rowtime).data_type()
                    )));
                }
                let full_df = plan.schema();
                let e = self
                    .sql_to_rel()
                    .sql_to_expr(w.expr.clone(), full_df, &mut PlannerContext::new())
                    .map_err(|e| {
                        Error::plan(format!("WATERMARK expression: {}", e.strip_backtrace()))
                    })?;
                let coerced = LogicalPlanBuilder::from(plan.clone())
                    .project(vec![e.alias("__watermark")])?
                    .build()?;
                let coerced = self.analyze(coerced)?;
                let LogicalPlan::Projection(p) = &coerced else {
                    return Err(Error::plan("watermark did not plan to a projection"));
                };
                let Some(expr) = p.expr.first().cloned() else {
                    return Err(Error::plan("watermark expression vanished"));
                };
                let ty = p.schema.field(0).data_type();
                if !table::is_timestamp(ty) {
                    return Err(Error::plan(format!(
                        "WATERMARK expression has type {ty}; it must be a timestamp such as \
                         `{} - INTERVAL '5' SECOND`",
                        w.column
                    )));
                }
                (Some(expr.unalias()), Some(rowtime))
            }
        };
        // The time attribute is marked for the planner (interval joins).
        let schema = match rowtime {
            None => schema,
            Some(i) => {
                let mut fields: Vec<Field> =
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields[i] = fields[i].clone().with_metadata(
                    [(
                        ROWTIME_METADATA.0.to_string(),
                        ROWTIME_METADATA.1.to_string(),
                    )]
                    .into(),
                );
                Arc::new(Schema::new(fields))
            }
        };
        let name = def.name.clone();
        let table = CatalogTable {
            def,
            physical_schema,
            schema,
            plan,
            watermark,
            rowtime,
        };
        self.tables.insert(name, Arc::new(table));
        Ok(())
    }

    /// The analyzed and optimized plan of view `name`.
    ///
    /// # Errors
    /// When there is no such view or it no longer plans.
    pub fn view_plan(&self, name: &str) -> Result<LogicalPlan> {
        let view = self
            .views
            .get(name)
            .ok_or_else(|| Error::plan(format!("table or view `{name}` does not exist")))?;
        self.analyze_and_optimize(view.plan.clone())
    }

    fn schema_of(&self, name: &str) -> Option<SchemaRef> {
        if let Some(t) = self.tables.get(name) {
            return Some(Arc::clone(&t.schema));
        }
        self.views.get(name).map(|v| v.schema())
    }
}

/// Names selected fields of rows as Flink does: `SELECT person.id` gives a column `id`
/// (DataFusion would call it `datagen.person[id]`).
fn name_field_accesses(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Projection(p) = plan else {
        return Ok(plan);
    };
    let mut changed = false;
    let exprs: Vec<Expr> = p
        .expr
        .iter()
        .map(|e| match e {
            Expr::ScalarFunction(f) if f.func.name() == "get_field" => match f.args.last() {
                Some(Expr::Literal(datafusion_common::ScalarValue::Utf8(Some(name)), _)) => {
                    changed = true;
                    e.clone().alias(name)
                }
                _ => e.clone(),
            },
            other => other.clone(),
        })
        .collect();
    if !changed {
        return Ok(LogicalPlan::Projection(p));
    }
    Ok(LogicalPlan::Projection(
        datafusion_expr::Projection::try_new(exprs, Arc::clone(&p.input))?,
    ))
}

impl ContextProvider for Catalog {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        let key = name.table();
        if let Some(t) = self.tables.get(key) {
            return Ok(Arc::new(TableScanSource {
                table: Arc::clone(t),
            }));
        }
        if let Some(v) = self.views.get(key) {
            return Ok(Arc::clone(v) as Arc<dyn TableSource>);
        }
        let mut known: Vec<&String> = self.tables.keys().chain(self.views.keys()).collect();
        known.sort();
        Err(datafusion_common::DataFusionError::Plan(format!(
            "table or view `{name}` does not exist (known: {known:?}); create it with CREATE \
             TABLE or CREATE VIEW first"
        )))
    }

    fn get_table_function_source(
        &self,
        name: &str,
        args: Vec<Expr>,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        let upper = name.to_ascii_uppercase();
        if crate::parser::tvf::WINDOW_FUNCTIONS.contains(&upper.as_str()) {
            let f = WindowTableFunction::resolve(name, &args, |t| self.schema_of(t))?;
            return Ok(Arc::new(f));
        }
        if name == crate::parser::lookup::LOOKUP_FUNCTION {
            let table = match args.first() {
                Some(Expr::Literal(datafusion_common::ScalarValue::Utf8(Some(t)), _)) => t,
                _ => {
                    return Err(datafusion_common::DataFusionError::Plan(
                        "FOR SYSTEM_TIME AS OF needs a table name before it".into(),
                    ))
                }
            };
            let table = self.tables.get(table).ok_or_else(|| {
                datafusion_common::DataFusionError::Plan(format!(
                    "lookup table `{table}` does not exist (FOR SYSTEM_TIME AS OF reads a table \
                     created with CREATE TABLE)"
                ))
            })?;
            let time_column = match args.get(1) {
                Some(Expr::Literal(datafusion_common::ScalarValue::Utf8(Some(c)), _)) => c.clone(),
                _ => String::new(),
            };
            return Ok(Arc::new(LookupTableSource {
                table: Arc::clone(table),
                time_column,
            }));
        }
        Err(datafusion_common::DataFusionError::Plan(format!(
            "table function `{name}` does not exist (Sluice has TUMBLE, HOP, CUMULATE, SESSION)"
        )))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.expr_planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalar.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregate.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.window.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.scalar.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.aggregate.keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.window.keys().cloned().collect()
    }
}
