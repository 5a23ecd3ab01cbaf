//! Tables of the catalog: a `CREATE TABLE` with its schemas, computed columns and
//! watermark planned, and the DataFusion table sources that name them in plans.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_expr::{Expr, LogicalPlan, TableSource};

use crate::parser::{ColumnKind, TableDef};

/// A table of the catalog, ready to be scanned or written.
#[derive(Debug)]
pub struct CatalogTable {
    /// The statement that created it.
    pub def: TableDef,
    /// The columns the connector reads or writes (physical columns, in order).
    pub physical_schema: SchemaRef,
    /// Every column: physical, metadata and computed, in declaration order.
    pub schema: SchemaRef,
    /// Computes `schema` from a scan of the physical columns ([`PhysicalTable`]); analyzed.
    pub plan: LogicalPlan,
    /// The watermark expression over `schema`, when the table declares one.
    pub watermark: Option<Expr>,
    /// The index in `schema` of the watermarked time attribute.
    pub rowtime: Option<usize>,
}

impl CatalogTable {
    /// The connector option `key`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.def.options.get(key).map(String::as_str)
    }

    /// The `connector` option.
    pub fn connector(&self) -> &str {
        self.option("connector").unwrap_or("")
    }
}

/// The physical columns of `def` as an Arrow schema.
pub(crate) fn physical_schema(def: &TableDef) -> SchemaRef {
    Arc::new(Schema::new(
        def.columns
            .iter()
            .filter(|c| !matches!(c.kind, ColumnKind::Computed(_)))
            .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// A scan of a catalog table in a user's query: every column.
#[derive(Debug)]
pub struct TableScanSource {
    /// The table.
    pub table: Arc<CatalogTable>,
}

impl TableSource for TableScanSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table.schema)
    }
}

/// The physical columns of a table, as the connector delivers them (the input of the
/// computed-column projection).
#[derive(Debug)]
pub struct PhysicalTable {
    /// The table's name.
    pub name: String,
    /// Its physical schema.
    pub schema: SchemaRef,
}

impl TableSource for PhysicalTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// A view: its plan is inlined where it is scanned.
#[derive(Debug)]
pub struct ViewSource {
    /// The view's query, planned (not yet analyzed).
    pub plan: LogicalPlan,
}

impl TableSource for ViewSource {
    fn schema(&self) -> SchemaRef {
        Arc::new(self.plan.schema().as_arrow().clone())
    }

    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        Some(std::borrow::Cow::Borrowed(&self.plan))
    }
}

/// Whether `t` can be a time attribute.
pub(crate) fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _))
}

/// A table read by a lookup join (`JOIN t FOR SYSTEM_TIME AS OF s.proc_time`): the join
/// loads its rows and looks them up by key.
#[derive(Debug)]
pub struct LookupTableSource {
    /// The table.
    pub table: Arc<CatalogTable>,
    /// The time column after `AS OF`, as written (`s.proc_time`).
    pub time_column: String,
}

impl TableSource for LookupTableSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table.physical_schema)
    }
}

/// Refuses lookup joins `AS OF` a column that is not a `PROCTIME()` attribute of the left
/// input: Flink's lookup joins read the table as of processing time, and an event-time
/// temporal join (a versioned table as of each row's event time) is another operator.
/// Checked on the plan before optimization, which may prune the unused time column.
///
/// # Errors
/// An `AS OF` column that is not a processing time attribute.
pub fn check_lookup_joins(plan: &LogicalPlan) -> crate::error::Result<()> {
    use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut problem = None;
    plan.apply(|node| {
        if let LogicalPlan::Join(j) = node {
            if let Some(time) = lookup_time_column(&j.right) {
                // Identifiers are case-sensitive, as in Flink.
                let column = datafusion_common::Column::from_qualified_name_ignore_case(&time);
                let schema = j.left.schema();
                let proctime = schema
                    .index_of_column(&column)
                    .ok()
                    .is_some_and(|i| crate::functions::proctime::is_proctime(schema.field(i)));
                if !proctime {
                    problem = Some(time);
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match problem {
        None => Ok(()),
        Some(time) => Err(crate::error::Error::unsupported(format!(
            "`FOR SYSTEM_TIME AS OF {time}`: Sluice joins lookup tables as of processing \
             time; use a PROCTIME() column of the left input (an event-time temporal join \
             is not supported)"
        ))),
    }
}

/// The `AS OF` column of the lookup table under `plan`, if it reads one.
fn lookup_time_column(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => lookup_time_column(&a.input),
        LogicalPlan::Projection(p) => lookup_time_column(&p.input),
        LogicalPlan::Filter(f) => lookup_time_column(&f.input),
        LogicalPlan::TableScan(scan) => scan
            .source
            .downcast_ref::<LookupTableSource>()
            .map(|s| s.time_column.clone()),
        _ => None,
    }
}
