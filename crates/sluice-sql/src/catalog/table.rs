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
}

impl TableSource for LookupTableSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table.physical_schema)
    }
}
