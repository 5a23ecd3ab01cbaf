//! Side outputs: extra, typed output streams of an operator besides its main output
//! (Flink's `OutputTag`), such as the late records of a window.
//!
//! An operator writes side records into a buffer found by its [`OutputTag`]; the chain
//! link sends the buffers downstream after every call into the operator, and forwards
//! the watermarks the operator emits and every barrier and end of stream to each side
//! output as well, so a side stream has the same event time as the main one.
//! Invariant: side records written before a watermark are sent before that watermark.

use std::any::{type_name, Any};
use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::{stable_hash, Records, StreamEvent};

use super::chain::EventSink;
use crate::error::Result;

/// Names a side output whose records are of type `T`.
///
/// Two tags are the same side output when their names and record types are equal.
pub struct OutputTag<T> {
    id: u64,
    name: Arc<str>,
    _records: PhantomData<fn() -> T>,
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        OutputTag {
            id: self.id,
            name: Arc::clone(&self.name),
            _records: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for OutputTag<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputTag")
            .field("name", &self.name)
            .field("type", &type_name::<T>())
            .finish()
    }
}

impl<T: 'static> OutputTag<T> {
    /// A tag named `name`.
    pub fn new(name: &str) -> Self {
        OutputTag {
            id: stable_hash(&(name, type_name::<T>())),
            name: name.into(),
            _records: PhantomData,
        }
    }
}

impl<T> OutputTag<T> {
    /// The identity of the side output in the job graph (from name and type).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The tag's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One side output of an operator instance: a buffer and where it goes.
pub trait SideOutput: Send {
    /// The tag id this output serves.
    fn id(&self) -> u64;
    /// The buffer, a `Records<T>` for the tag's `T`.
    fn buffer(&mut self) -> &mut dyn Any;
    /// Sends the buffered records downstream.
    ///
    /// # Errors
    /// Any failure downstream.
    fn send_buffered(&mut self) -> Result<()>;
    /// Sends buffered records, then the control event `event`.
    ///
    /// # Errors
    /// Any failure downstream.
    fn on_control(&mut self, event: &StreamEvent<()>) -> Result<()>;
    /// Flushes partial batches of the downstream routers.
    ///
    /// # Errors
    /// Any failure downstream.
    fn flush(&mut self) -> Result<()>;
}

/// The side output for records of type `T`.
pub struct TypedSideOutput<T> {
    id: u64,
    buffer: Records<T>,
    sink: Box<dyn EventSink<Records<T>>>,
}

impl<T> TypedSideOutput<T> {
    /// A side output for tag `id` writing into `sink`.
    pub fn new(id: u64, sink: Box<dyn EventSink<Records<T>>>) -> Self {
        TypedSideOutput {
            id,
            buffer: Records::new(),
            sink,
        }
    }
}

impl<T: Send + 'static> SideOutput for TypedSideOutput<T> {
    fn id(&self) -> u64 {
        self.id
    }

    fn buffer(&mut self) -> &mut dyn Any {
        &mut self.buffer
    }

    fn send_buffered(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.buffer);
        self.sink.on_event(StreamEvent::Data(batch))
    }

    fn on_control(&mut self, event: &StreamEvent<()>) -> Result<()> {
        self.send_buffered()?;
        match event.map_control() {
            Some(control) => self.sink.on_event(control),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.send_buffered()?;
        self.sink.flush()
    }
}

/// The side outputs of one operator instance (empty for most operators).
#[derive(Default)]
pub struct SideOutputs {
    outputs: Vec<Box<dyn SideOutput>>,
}

impl std::fmt::Debug for SideOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideOutputs")
            .field("outputs", &self.outputs.len())
            .finish()
    }
}

impl SideOutputs {
    /// Side outputs over `outputs`.
    pub fn new(outputs: Vec<Box<dyn SideOutput>>) -> Self {
        SideOutputs { outputs }
    }

    /// Whether the operator has no side output consumed downstream.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// The buffer of `tag`'s side output, or `None` when no operator consumes it (the job
    /// graph has no stream for that tag, so its records have nowhere to go).
    pub fn buffer<T: Send + 'static>(&mut self, tag: &OutputTag<T>) -> Option<&mut Records<T>> {
        self.outputs
            .iter_mut()
            .find(|o| o.id() == tag.id())
            .and_then(|o| o.buffer().downcast_mut::<Records<T>>())
    }

    /// Sends every buffer downstream.
    pub(crate) fn send_buffered(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.send_buffered())
    }

    /// Sends every buffer, then `event`, to every side output.
    pub(crate) fn on_control(&mut self, event: &StreamEvent<()>) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.on_control(event))
    }

    /// Flushes every side output.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.flush())
    }
}
