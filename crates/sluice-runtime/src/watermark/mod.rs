//! Watermarks: generated from record timestamps at the start of a pipeline, combined over
//! the input channels of every task downstream.

mod generator;
mod splits;
mod tracker;

pub use generator::{BoundedOutOfOrdernessGenerator, WatermarkBound};
pub use splits::{SplitWatermarks, WatermarkUpdate};
pub use tracker::{StatusChange, WatermarkTracker};
