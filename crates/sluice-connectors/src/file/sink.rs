//! [`TextFileSink`]: one line per record into a file (or one file per subtask).
//!
//! Lines go to a hidden in-progress file that is renamed to its final name when the input
//! ends, so a reader never sees a half-written result under the final name. With
//! checkpoints, the file's length is part of each checkpoint and a restored job truncates
//! the file to it before writing on, so the final file holds every line once.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::io::{Seek, SeekFrom};

use sluice_core::{CheckpointId, Records};
use sluice_runtime::sink::{Sink, SinkWriter};
use sluice_runtime::source::{encode_position, restored_position};
use sluice_runtime::{OperatorContext, Result};

use crate::error::Error;

/// Writes `format(record)` as one line per record. With parallelism 1 the path is the
/// output file; with more, it is a directory holding `part-<subtask>` files.
pub struct TextFileSink<T> {
    path: PathBuf,
    format: Arc<dyn Fn(&T) -> String + Send + Sync>,
}

impl<T> std::fmt::Debug for TextFileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextFileSink")
            .field("path", &self.path)
            .finish()
    }
}

impl<T> TextFileSink<T> {
    /// A sink writing to `path`, each record formatted by `format`.
    pub fn new(
        path: impl Into<PathBuf>,
        format: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Self {
        TextFileSink {
            path: path.into(),
            format: Arc::new(format),
        }
    }
}

struct TextFileWriter<T> {
    format: Arc<dyn Fn(&T) -> String + Send + Sync>,
    final_path: PathBuf,
    temp_path: PathBuf,
    out: Option<BufWriter<File>>,
}

fn write_error(path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

impl<T: Send + 'static> Sink<T> for TextFileSink<T> {
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        let final_path = if ctx.location.parallelism == 1 {
            self.path.clone()
        } else {
            std::fs::create_dir_all(&self.path).map_err(|e| write_error(&self.path, e))?;
            self.path.join(format!("part-{}", ctx.location.subtask))
        };
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let temp_path = final_path.with_file_name(format!(".{name}.inprogress"));
        Ok(Box::new(TextFileWriter {
            format: Arc::clone(&self.format),
            final_path,
            temp_path,
            out: None,
        }))
    }
}

impl<T: Send + 'static> TextFileWriter<T> {
    fn file(&mut self) -> Result<&mut BufWriter<File>, Error> {
        if self.out.is_none() {
            let file =
                File::create(&self.temp_path).map_err(|e| write_error(&self.temp_path, e))?;
            self.out = Some(BufWriter::with_capacity(256 * 1024, file));
        }
        match self.out.as_mut() {
            Some(out) => Ok(out),
            None => unreachable!("the writer was set just above"),
        }
    }
}

impl<T: Send + 'static> SinkWriter<T> for TextFileWriter<T> {
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        // After a restore, keep what the file held at the checkpoint and drop the lines
        // written after it (the restored job writes them again).
        if let Some(position) = restored_position(ctx, 1)? {
            let length = position.first().copied().unwrap_or(0);
            if !self.temp_path.exists() {
                // The file was made final after the checkpoint (the input had ended): take
                // it back, the restored run writes its end again.
                if self.final_path.exists() {
                    std::fs::rename(&self.final_path, &self.temp_path)
                        .map_err(|e| write_error(&self.final_path, e))?;
                } else if length > 0 {
                    return Err(Error::Write {
                        path: self.temp_path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!(
                                "the checkpoint says {length} bytes were written, but neither this file nor {} exists; restore from a checkpoint of the same output",
                                self.final_path.display()
                            ),
                        ),
                    }
                    .into());
                }
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.temp_path)
                .map_err(|e| write_error(&self.temp_path, e))?;
            file.set_len(length)
                .map_err(|e| write_error(&self.temp_path, e))?;
            let mut out = BufWriter::with_capacity(256 * 1024, file);
            out.seek(SeekFrom::End(0))
                .map_err(|e| write_error(&self.temp_path, e))?;
            self.out = Some(out);
            return Ok(());
        }
        self.file()?;
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        let temp = self.temp_path.clone();
        let out = self.file()?;
        out.flush().map_err(|e| write_error(&temp, e))?;
        out.get_ref()
            .sync_data()
            .map_err(|e| write_error(&temp, e))?;
        let length = out
            .get_ref()
            .metadata()
            .map_err(|e| write_error(&temp, e))?
            .len();
        Ok(Some(encode_position(&[length])))
    }

    fn write(&mut self, batch: Records<T>) -> Result<()> {
        let format = Arc::clone(&self.format);
        let temp = self.temp_path.clone();
        let out = self.file()?;
        for value in batch.values() {
            let mut line = format(value);
            line.push('\n');
            out.write_all(line.as_bytes())
                .map_err(|e| write_error(&temp, e))?;
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        // Stopped with checkpoints: the in-progress file stays for the resumed run, which
        // truncates it to its checkpoint and writes on.
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| write_error(&self.temp_path, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.file()?;
        if let Some(out) = self.out.take() {
            let file = out
                .into_inner()
                .map_err(|e| write_error(&self.temp_path, e.into_error()))?;
            file.sync_all()
                .map_err(|e| write_error(&self.temp_path, e))?;
        }
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| write_error(&self.final_path, e))?;
        Ok(())
    }
}
