//! [`TableSinkOperator`]: the end of an `INSERT INTO`: rows formatted as text lines
//! ([`crate::format::RowWriter`]) and handed to a connector's typed sink, whose
//! checkpoint behaviour (two-phase commit of part files, Kafka transactions) applies
//! unchanged.

use sluice_core::{CheckpointId, Records, Watermark};
use sluice_runtime::checkpoint::OperatorSnapshot;
use sluice_runtime::sink::SinkOperator;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::SqlBatch;
use crate::error::exec;
use crate::format::RowWriter;

/// Writes rows through a text sink.
pub struct TableSinkOperator {
    writer: RowWriter,
    sink: SinkOperator<String>,
}

impl TableSinkOperator {
    /// Rows formatted by `writer` into `sink`.
    pub fn new(writer: RowWriter, sink: SinkOperator<String>) -> Self {
        TableSinkOperator { writer, sink }
    }
}

impl Operator for TableSinkOperator {
    type In = SqlBatch;
    type Out = Records<()>;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.sink.open(ctx)
    }

    fn on_data(
        &mut self,
        batch: SqlBatch,
        out: &mut Collector<'_, Records<()>>,
    ) -> RuntimeResult<()> {
        let lines = exec(self.writer.lines(&batch))?;
        self.sink.on_data(Records::from(lines), out)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<()>>,
    ) -> RuntimeResult<()> {
        self.sink.on_watermark(watermark, out)
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> RuntimeResult<OperatorSnapshot> {
        self.sink.snapshot_state(checkpoint)
    }

    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: CheckpointId,
        out: &mut Collector<'_, Records<()>>,
    ) -> RuntimeResult<()> {
        self.sink.notify_checkpoint_complete(checkpoint, out)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Records<()>>) -> RuntimeResult<()> {
        self.sink.on_end_of_input(out)
    }
}
