//! Watermark progress across the input channels of a task.

mod tracker;

pub use tracker::WatermarkTracker;
