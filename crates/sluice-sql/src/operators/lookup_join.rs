//! [`LookupJoinOperator`]: a lookup join (`JOIN dim FOR SYSTEM_TIME AS OF s.proc_time`,
//! Flink's `LookupJoin`) against a file table: each subtask loads the whole table,
//! indexes it by the join key, and enriches every input row with the rows of its key as
//! of processing time. The table is loaded again when its cache TTL
//! (`'lookup.cache.ttl'`, Flink's `'lookup.join.cache.ttl'`, default 60 minutes) has
//! passed, so changes to the file show up.
//!
//! No state: a restored job loads the table again. Input row kinds pass through, so a
//! changelog stays a changelog. A `LEFT JOIN` emits an input row without a match once,
//! padded with NULLs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion_physical_expr::PhysicalExpr;
use hashbrown::HashMap;
use sluice_core::time::{Clock, SystemClock};
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::{RowKind, SqlBatch};
use crate::error::{exec, Error, Result};
use crate::format::{LineDecoder, TextFormat};

/// A step of the lookup side's plan, applied to the loaded rows.
pub enum LookupStep {
    /// Keep the rows where the predicate holds.
    Filter(Arc<dyn PhysicalExpr>),
    /// Compute these columns, giving rows of the schema.
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
}

/// Where the lookup table's rows come from.
#[derive(Clone)]
pub struct LookupTable {
    /// A file, or a directory of files.
    pub path: PathBuf,
    /// The files' format.
    pub format: TextFormat,
    /// The table's physical schema.
    pub schema: SchemaRef,
    /// The table's name, for messages.
    pub name: String,
    /// How long loaded rows are used before loading again.
    pub ttl_ms: i64,
}

/// What a lookup join computes.
pub struct LookupJoinSpec {
    /// The table.
    pub table: LookupTable,
    /// The lookup side's filters and projections, in order.
    pub steps: Vec<LookupStep>,
    /// Key expressions over the lookup rows (after the steps), of the input keys' types.
    pub lookup_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Key columns of the input rows.
    pub input_keys: Vec<usize>,
    /// Columns of the input rows that are output (the rest are computed keys).
    pub input_width: usize,
    /// Whether input rows without a match are emitted with NULLs (`LEFT JOIN`).
    pub left_outer: bool,
    /// Conditions besides key equality, over the input's output columns then the lookup
    /// row's columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The output schema: the input's output columns, then the lookup row's.
    pub schema: SchemaRef,
}

/// Joins each input row with the lookup table's rows of its key.
pub struct LookupJoinOperator {
    spec: Arc<LookupJoinSpec>,
    converter: RowConverter,
    rows: Option<RecordBatch>,
    index: HashMap<Box<[u8]>, Vec<u32>>,
    loaded_at: i64,
    clock: Arc<dyn Clock>,
}

/// The files of `path`: itself, or the visible files of a directory in name order.
fn files_of(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
        })
        .collect();
    files.sort();
    Ok(files)
}

impl LookupJoinOperator {
    /// A lookup join computing `spec` with keys of `key_types`.
    ///
    /// # Errors
    /// When a key type has no row encoding.
    pub fn new(spec: Arc<LookupJoinSpec>, key_types: Vec<DataType>) -> Result<Self> {
        Ok(LookupJoinOperator {
            converter: RowConverter::new(key_types.into_iter().map(SortField::new).collect())?,
            spec,
            rows: None,
            index: HashMap::new(),
            loaded_at: i64::MIN,
            clock: Arc::new(SystemClock),
        })
    }

    /// Loads the table's rows, applies the lookup side's steps and indexes the keys.
    ///
    /// # Errors
    /// When a file cannot be read or a line does not parse (by the table's policy).
    pub fn load(&mut self) -> Result<()> {
        let table = &self.spec.table;
        let origin = format!("lookup table `{}` ({})", table.name, table.path.display());
        let decoder = LineDecoder::new(table.format.clone(), Arc::clone(&table.schema), origin);
        let files = files_of(&table.path).map_err(|e| {
            Error::Execution(format!(
                "lookup table `{}`: cannot read {}: {e}; check its 'path'",
                table.name,
                table.path.display()
            ))
        })?;
        let mut batches = Vec::new();
        for file in files {
            let text = fs::read_to_string(&file).map_err(|e| {
                Error::Execution(format!(
                    "lookup table `{}`: cannot read {}: {e}",
                    table.name,
                    file.display()
                ))
            })?;
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            for chunk in lines.chunks(8192) {
                if let Some(b) = decoder.decode_lines(chunk)? {
                    batches.push(b);
                }
            }
        }
        let mut rows = concat_batches(&table.schema, &batches)?;
        for step in &self.spec.steps {
            rows = match step {
                LookupStep::Filter(p) => {
                    let mask = p.evaluate(&rows)?.into_array(rows.num_rows())?;
                    let mask = mask
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .ok_or_else(|| {
                            Error::Execution("a lookup filter is not a boolean".into())
                        })?;
                    filter_record_batch(&rows, mask)?
                }
                LookupStep::Project(exprs, schema) => {
                    let n = rows.num_rows();
                    let columns = exprs
                        .iter()
                        .map(|e| e.evaluate(&rows).and_then(|v| v.into_array(n)))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    RecordBatch::try_new(Arc::clone(schema), columns)?
                }
            };
        }
        let n = rows.num_rows();
        let keys = self
            .spec
            .lookup_keys
            .iter()
            .map(|e| e.evaluate(&rows).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let encoded = self.converter.convert_columns(&keys)?;
        let mut index: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        for (i, key) in encoded.iter().enumerate() {
            if keys.iter().any(|k| k.is_null(i)) {
                continue;
            }
            index.entry(key.as_ref().into()).or_default().push(i as u32);
        }
        self.rows = Some(rows);
        self.index = index;
        self.loaded_at = self.clock.now_ms();
        Ok(())
    }

    /// The joined rows of `batch`.
    ///
    /// # Errors
    /// When a key or the filter cannot be evaluated.
    pub fn join(&mut self, batch: &SqlBatch) -> Result<Option<SqlBatch>> {
        let now = self.clock.now_ms();
        if self.rows.is_none() || now.saturating_sub(self.loaded_at) >= self.spec.table.ttl_ms {
            self.load()?;
        }
        let Some(lookup) = &self.rows else {
            return Ok(None);
        };
        let data = batch.data();
        let keys: Vec<ArrayRef> = self
            .spec
            .input_keys
            .iter()
            .map(|&c| Arc::clone(data.column(c)))
            .collect();
        let encoded = self.converter.convert_columns(&keys)?;
        let mut left: Vec<u32> = Vec::new();
        let mut right: Vec<Option<u32>> = Vec::new();
        for (i, key) in encoded.iter().enumerate() {
            if let Some(matches) = self.index.get(key.as_ref()) {
                for &m in matches {
                    left.push(i as u32);
                    right.push(Some(m));
                }
            }
        }
        // The pairs that pass the other conditions, still in input order.
        let (left, right) = match &self.spec.filter {
            None => (left, right),
            Some(f) => {
                let candidates = self.assemble(data, lookup, &left, &right)?;
                let mask = f.evaluate(&candidates)?.into_array(candidates.num_rows())?;
                let mask = mask
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| Error::Execution("a join condition is not a boolean".into()))?;
                let keep = |i: usize| mask.is_valid(i) && mask.value(i);
                let kept_left = left.iter().enumerate().filter(|(i, _)| keep(*i));
                let kept_right = right.iter().enumerate().filter(|(i, _)| keep(*i));
                (
                    kept_left.map(|(_, &l)| l).collect(),
                    kept_right.map(|(_, &r)| r).collect(),
                )
            }
        };
        // Unmatched input rows padded with NULLs (LEFT JOIN), each in its place.
        let (kept_left, right) = if self.spec.left_outer {
            let mut l_out = Vec::with_capacity(left.len());
            let mut r_out = Vec::with_capacity(right.len());
            let mut next = 0;
            for i in 0..data.num_rows() as u32 {
                let first = next;
                while next < left.len() && left[next] == i {
                    l_out.push(i);
                    r_out.push(right[next]);
                    next += 1;
                }
                if next == first {
                    l_out.push(i);
                    r_out.push(None);
                }
            }
            (l_out, r_out)
        } else {
            (left, right)
        };
        let joined = self.assemble(data, lookup, &kept_left, &right)?;
        if joined.num_rows() == 0 {
            return Ok(None);
        }
        Ok(Some(match batch.kinds() {
            None => SqlBatch::new(joined),
            Some(kinds) => {
                let kinds: Vec<RowKind> = kept_left.iter().map(|&l| kinds[l as usize]).collect();
                SqlBatch::with_kinds(joined, kinds)
            }
        }))
    }

    /// Output rows: input row `left[i]` with lookup row `right[i]` (NULLs for `None`).
    fn assemble(
        &self,
        data: &RecordBatch,
        lookup: &RecordBatch,
        left: &[u32],
        right: &[Option<u32>],
    ) -> Result<RecordBatch> {
        let left_idx = UInt32Array::from(left.to_vec());
        let right_idx = UInt32Array::from(right.to_vec());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.spec.schema.fields().len());
        for c in 0..self.spec.input_width {
            columns.push(take(data.column(c).as_ref(), &left_idx, None)?);
        }
        for (c, field) in lookup
            .columns()
            .iter()
            .zip(self.spec.schema.fields().iter().skip(self.spec.input_width))
        {
            columns.push(if lookup.num_rows() == 0 {
                new_null_array(field.data_type(), left.len())
            } else {
                take(c.as_ref(), &right_idx, None)?
            });
        }
        Ok(RecordBatch::try_new(
            Arc::clone(&self.spec.schema),
            columns,
        )?)
    }
}

impl Operator for LookupJoinOperator {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.clock = Arc::clone(&ctx.clock);
        exec(self.load())
    }

    fn on_data(&mut self, batch: SqlBatch, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        if let Some(rows) = exec(self.join(&batch))? {
            out.collect(rows)?;
        }
        Ok(())
    }
}
