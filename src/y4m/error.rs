//! The error type of `.y4m` reading and writing.
//!
//! Every message starts with the file (or the name given for an in-memory
//! stream) and says what was expected.

use std::io;
use std::path::PathBuf;

/// An error reading or writing a YUV4MPEG2 stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Y4mError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {io}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        io: io::Error,
    },
    /// The file could not be created or written.
    #[error("{}: cannot write: {io}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        io: io::Error,
    },
    /// The file does not start with `YUV4MPEG2 `.
    #[error("{}: not a YUV4MPEG2 file: starts with {found}, expected \"YUV4MPEG2 \"", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first bytes, escaped and quoted (or "nothing": empty file).
        found: String,
    },
    /// The stream header is malformed: a missing or invalid tag, no end of
    /// line within [`MAX_LINE`](super::MAX_LINE) bytes.
    #[error("{}: stream header: {problem}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// A colorspace (the `C` tag) that is not supported here.
    #[error(
        "{}: unsupported colorspace `C{colorspace}`: expected one of {supported}",
        path.display()
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The `C` tag's value, for instance `420p10`.
        colorspace: String,
        /// The supported ones, comma-separated.
        supported: &'static str,
    },
    /// A frame that does not start with a `FRAME` line.
    #[error(
        "{}: frame {index}: header {found}: expected \"FRAME\", optional parameters and a newline",
        path.display()
    )]
    BadFrameHeader {
        /// The file.
        path: PathBuf,
        /// The frame's index, from 0.
        index: u64,
        /// What was found, escaped and quoted.
        found: String,
    },
    /// The file ends inside a frame's pixels.
    #[error(
        "{}: frame {index} is truncated: expected {expected} bytes of pixels, got {got}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The frame's index, from 0.
        index: u64,
        /// Bytes a frame holds.
        expected: usize,
        /// Bytes the file had left.
        got: usize,
    },
    /// A frame given to the writer whose size is not the stream's.
    #[error(
        "{}: frame {index} is {width}x{height}: expected {expected_width}x{expected_height}, \
         the stream's size",
        path.display()
    )]
    FrameSize {
        /// The file.
        path: PathBuf,
        /// The frame's index, from 0.
        index: u64,
        /// The frame's width.
        width: usize,
        /// The frame's height.
        height: usize,
        /// The stream's width.
        expected_width: usize,
        /// The stream's height.
        expected_height: usize,
    },
    /// Writer parameters that cannot make a stream (a zero size or rate).
    #[error("{}: cannot write this stream: {problem}", path.display())]
    InvalidParameters {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        problem: String,
    },
}
