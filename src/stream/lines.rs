//! `results.jsonl` and the like: an append-only file of whole lines.
//!
//! Each line goes out in one `write_all` from a buffer reused for every
//! line (no allocation per line once warm, no `BufWriter` that would flush
//! half a line). A write that fails (disk full, a file system turned
//! read-only, an I/O error) is rolled back: the file is truncated to its
//! last whole line and the write position put back there, so a reader, or
//! the next line once the disk has room again, never meets a torn line. The
//! caller decides whether to go on; [`LineFile`] counts the lines lost.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An append-only file of whole lines (see the module docs).
#[derive(Debug)]
pub struct LineFile {
    file: File,
    path: PathBuf,
    /// Bytes of whole lines in the file.
    good: u64,
    buf: Vec<u8>,
    lost: u64,
    /// Set when a rollback failed: the file may end in a torn line, so
    /// nothing more is written to it.
    broken: bool,
}

/// A line that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: line not written ({what}): {source}", path.display())]
pub struct LineError {
    /// The file.
    pub path: PathBuf,
    /// What happened to the file: rolled back to its last whole line, or
    /// left as it is (its rollback failed too; nothing more is written).
    pub what: &'static str,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

impl LineFile {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> std::io::Result<LineFile> {
        Ok(LineFile {
            file: File::create(path)?,
            path: path.to_path_buf(),
            good: 0,
            buf: Vec::with_capacity(1024),
            lost: 0,
            broken: false,
        })
    }

    /// Appends one line: `fill` writes it into the buffer (without the
    /// newline). On a failed write the file is rolled back to its last whole
    /// line and the error returned; the line is counted in [`lost`](Self::lost).
    pub fn append<E>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Result<(), LineError>, E> {
        self.buf.clear();
        fill(&mut self.buf)?;
        self.buf.push(b'\n');
        if self.broken {
            self.lost += 1;
            return Ok(Err(LineError {
                path: self.path.clone(),
                what: "an earlier rollback failed, so nothing more is written",
                source: std::io::Error::other("file left as it was"),
            }));
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.good += self.buf.len() as u64;
                Ok(Ok(()))
            }
            Err(source) => {
                self.lost += 1;
                let rolled = self
                    .file
                    .set_len(self.good)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.good)).map(|_| ()));
                let what = match rolled {
                    Ok(()) => "the file ends at its last whole line",
                    Err(_) => {
                        self.broken = true;
                        "its rollback failed too: nothing more is written to it"
                    }
                };
                Ok(Err(LineError {
                    path: self.path.clone(),
                    what,
                    source,
                }))
            }
        }
    }

    /// Lines that could not be written.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Bytes of whole lines written.
    pub fn len(&self) -> u64 {
        self.good
    }

    /// Whether no line has been written.
    pub fn is_empty(&self) -> bool {
        self.good == 0
    }

    /// Flushes the file to the disk (`fsync`).
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("sammix-lines-{}-{name}", std::process::id()))
    }

    #[test]
    fn whole_lines_in_order() {
        let path = temp("ok");
        let mut f = LineFile::create(&path).unwrap();
        for i in 0..3 {
            f.append(|b| -> Result<(), std::io::Error> { write!(b, "{{\"frame\": {i}}}") })
                .unwrap()
                .unwrap();
        }
        assert_eq!(f.lost(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"frame\": 0}\n{\"frame\": 1}\n{\"frame\": 2}\n");
        assert_eq!(f.len(), text.len() as u64);
        let _ = std::fs::remove_file(&path);
    }

    /// `/dev/full` fails every write with ENOSPC (and cannot be truncated):
    /// each line is counted lost, the error names the file, nothing panics.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_loses_lines_and_says_so() {
        let Ok(mut f) = LineFile::create(Path::new("/dev/full")) else {
            return; // no /dev/full in this sandbox
        };
        for _ in 0..3 {
            let e = f
                .append(|b| -> Result<(), std::io::Error> { write!(b, "x") })
                .unwrap()
                .unwrap_err();
            assert!(
                e.to_string().starts_with("/dev/full: line not written"),
                "{e}"
            );
        }
        assert_eq!(f.lost(), 3);
        assert!(f.is_empty());
    }

    #[test]
    fn a_line_that_cannot_be_formatted_is_not_written() {
        let path = temp("fmt");
        let mut f = LineFile::create(&path).unwrap();
        let r = f.append(|_| Err::<(), _>("no"));
        assert_eq!(r.unwrap_err(), "no");
        assert!(f.is_empty());
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
        let _ = std::fs::remove_file(&path);
    }
}
