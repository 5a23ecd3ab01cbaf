//! Text files in and out.
//!
//! [`TextFileSource`] reads the lines of a file or of every file in a directory, split into
//! byte ranges so that parallel subtasks share even a single large file; [`TextFileSink`]
//! writes one line per record, into a file that appears under its final name only once
//! complete.

mod sink;
mod source;
mod split;
mod transactional;

pub use sink::TextFileSink;
pub use source::TextFileSource;
pub use split::FileSplit;
pub use transactional::{committed_partition_parts, committed_parts, TransactionalFileSink};
