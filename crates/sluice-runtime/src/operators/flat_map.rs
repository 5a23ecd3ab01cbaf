//! [`FlatMapOperator`] (zero or more outputs per input) and [`FilterOperator`].

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::Records;

use crate::error::Result;
use crate::operator::{Collector, Operator};

/// Replaces every value with the values a function yields; outputs inherit the input's
/// timestamp.
pub struct FlatMapOperator<T, U, I, F> {
    f: Arc<F>,
    _types: PhantomData<fn(T) -> (U, I)>,
}

impl<T, U, I, F> FlatMapOperator<T, U, I, F> {
    /// A flat map with `f`.
    pub fn new(f: Arc<F>) -> Self {
        FlatMapOperator {
            f,
            _types: PhantomData,
        }
    }
}

impl<T, U, I, F> Operator for FlatMapOperator<T, U, I, F>
where
    T: Send + 'static,
    U: Send + 'static,
    I: IntoIterator<Item = U> + 'static,
    F: Fn(T) -> I + Send + Sync + 'static,
{
    type In = Records<T>;
    type Out = Records<U>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<U>>) -> Result<()> {
        out.collect(batch.flat_map(|v| (self.f)(v)))
    }
}

/// Keeps the values for which a predicate holds.
pub struct FilterOperator<T, F> {
    f: Arc<F>,
    _types: PhantomData<fn(T)>,
}

impl<T, F> FilterOperator<T, F> {
    /// A filter with predicate `f`.
    pub fn new(f: Arc<F>) -> Self {
        FilterOperator {
            f,
            _types: PhantomData,
        }
    }
}

impl<T, F> Operator for FilterOperator<T, F>
where
    T: Send + 'static,
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    type In = Records<T>;
    type Out = Records<T>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        out.collect(batch.filter(|v| (self.f)(v)))
    }
}
