//! [`MapOperator`]: one output value per input value.

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::Records;

use crate::error::Result;
use crate::operator::{Collector, Operator};

/// Applies a function to every value; timestamps are kept.
pub struct MapOperator<T, U, F> {
    f: Arc<F>,
    _types: PhantomData<fn(T) -> U>,
}

impl<T, U, F> MapOperator<T, U, F> {
    /// A map with `f`.
    pub fn new(f: Arc<F>) -> Self {
        MapOperator {
            f,
            _types: PhantomData,
        }
    }
}

impl<T, U, F> Operator for MapOperator<T, U, F>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Send + Sync + 'static,
{
    type In = Records<T>;
    type Out = Records<U>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<U>>) -> Result<()> {
        out.collect(batch.map(|v| (self.f)(v)))
    }
}
