//! [`IdentityOperator`]: passes batches through (the node behind `union`).

use std::marker::PhantomData;

use sluice_core::Records;

use crate::error::Result;
use crate::operator::{Collector, Operator};

/// Forwards every batch unchanged.
pub struct IdentityOperator<T> {
    _types: PhantomData<fn(T)>,
}

impl<T> Default for IdentityOperator<T> {
    fn default() -> Self {
        IdentityOperator {
            _types: PhantomData,
        }
    }
}

impl<T: Send + 'static> Operator for IdentityOperator<T> {
    type In = Records<T>;
    type Out = Records<T>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        out.collect(batch)
    }
}
