//! Reading a `.y4m` stream frame by frame into reused buffers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::convert::YuvToRgb;
use super::{ColorRange, Colorspace, Y4mError};
use super::{DEFAULT_FRAME_RATE, MAX_DIMENSION, MAX_LINE, SUPPORTED};
use crate::frame::{Frame, PixelFormat};

/// The stream header's first word.
const MAGIC: &[u8] = b"YUV4MPEG2";

/// How much a cold frame buffer grows per read, so a header announcing a
/// huge frame allocates only as much as the file really holds.
const GROW_STEP: usize = 1 << 20;

/// A YUV4MPEG2 reader over a file (or any buffered reader).
///
/// ```no_run
/// use sammix::frame::{Frame, PixelFormat};
/// use sammix::y4m::Y4mReader;
///
/// let mut clip = Y4mReader::open("models/sammix-us-tiny/demo/clip.y4m")?;
/// let mut frame = Frame::zeros(clip.width(), clip.height(), PixelFormat::Gray8);
/// while clip.read_frame(&mut frame, PixelFormat::Gray8)? {
///     // frame.sequence is 0, 1, 2, …
/// }
/// # Ok::<(), sammix::y4m::Y4mError>(())
/// ```
#[derive(Debug)]
pub struct Y4mReader<R = BufReader<File>> {
    inner: R,
    path: PathBuf,
    width: usize,
    height: usize,
    frame_rate: (u32, u32),
    colorspace: Colorspace,
    range: ColorRange,
    frame_len: usize,
    frames_read: u64,
    /// The current header line.
    line: Vec<u8>,
    /// The current frame's planes (Y, Cb, Cr), at least `frame_len` bytes
    /// once a frame has been read.
    planes: Vec<u8>,
}

impl Y4mReader<BufReader<File>> {
    /// Opens a file and reads its stream header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Y4mError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Y4mError::Read {
            path: path.to_owned(),
            io: source,
        })?;
        Y4mReader::new(BufReader::new(file), path)
    }
}

impl<R: BufRead> Y4mReader<R> {
    /// Reads the stream header from `inner`; `path` names the stream in
    /// error messages.
    pub fn new(mut inner: R, path: impl Into<PathBuf>) -> Result<Self, Y4mError> {
        let path = path.into();
        let mut line = Vec::with_capacity(MAX_LINE);
        let ended = read_line(&mut inner, &mut line).map_err(|source| Y4mError::Read {
            path: path.clone(),
            io: source,
        })?;
        let after_magic = line.get(MAGIC.len()).copied();
        if !line.starts_with(MAGIC) || !matches!(after_magic, Some(b' ' | b'\n') | None) {
            let found = if line.is_empty() {
                "nothing (the file is empty)".to_owned()
            } else {
                quoted(&line, 16)
            };
            return Err(Y4mError::BadMagic { path, found });
        }
        let bad = |problem: String| Y4mError::BadHeader {
            path: path.clone(),
            problem,
        };
        if !ended {
            return Err(bad(if line.len() >= MAX_LINE {
                format!("no end of line within {MAX_LINE} bytes: expected a short text line")
            } else {
                "the file ends inside it: expected a newline and frames".to_owned()
            }));
        }
        let text = std::str::from_utf8(&line[MAGIC.len()..line.len() - 1])
            .map_err(|_| bad("not ASCII text: expected space-separated tags".to_owned()))?;
        let header = parse_tags(text).map_err(|e| match e {
            TagError::Unsupported(colorspace) => Y4mError::Unsupported {
                path: path.clone(),
                colorspace,
                supported: SUPPORTED,
            },
            TagError::Bad(problem) => bad(problem),
        })?;
        let (width, height) = match (header.width, header.height) {
            (Some(w), Some(h)) => (w, h),
            (None, _) => return Err(bad("no W tag: expected W<width in pixels>".to_owned())),
            (_, None) => return Err(bad("no H tag: expected H<height in pixels>".to_owned())),
        };
        let frame_len = header.colorspace.frame_len(width, height).ok_or_else(|| {
            bad(format!(
                "a {width}x{height} frame is too large for this machine"
            ))
        })?;
        Ok(Y4mReader {
            inner,
            path,
            width,
            height,
            frame_rate: header.frame_rate,
            colorspace: header.colorspace,
            range: header.range,
            frame_len,
            frames_read: 0,
            line,
            planes: Vec::new(),
        })
    }

    /// Frame width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Frame height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Frames per second as (numerator, denominator).
    pub fn frame_rate(&self) -> (u32, u32) {
        self.frame_rate
    }

    /// The planes' layout.
    pub fn colorspace(&self) -> Colorspace {
        self.colorspace
    }

    /// The range of the codes, used for RGB output only.
    pub fn color_range(&self) -> ColorRange {
        self.range
    }

    /// Frames read so far (the index of the next one).
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The file's path (or the name given to [`Y4mReader::new`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next frame into `out` as `want`, reshaping it with
    /// [`Frame::reset`] and setting `sequence` to the frame's index and
    /// `captured` to `None`. Returns `Ok(false)` at the end of the file;
    /// then, and on any error, `out` is left untouched. After the first
    /// frame nothing is allocated, given an `out` of the same size and
    /// format each time.
    pub fn read_frame(&mut self, out: &mut Frame, want: PixelFormat) -> Result<bool, Y4mError> {
        let index = self.frames_read;
        let read_error = |source| Y4mError::Read {
            path: self.path.clone(),
            io: source,
        };
        let ended = read_line(&mut self.inner, &mut self.line).map_err(read_error)?;
        if self.line.is_empty() {
            return Ok(false);
        }
        let tag_ends = matches!(self.line.get(5), Some(b' ' | b'\n'));
        if !ended || !self.line.starts_with(b"FRAME") || !tag_ends {
            let mut found = quoted(&self.line, 40);
            if !ended {
                found.push_str(if self.line.len() >= MAX_LINE {
                    " with no newline"
                } else {
                    " then the end of the file"
                });
            }
            return Err(Y4mError::BadFrameHeader {
                path: self.path.clone(),
                index,
                found,
            });
        }
        let got =
            read_planes(&mut self.inner, &mut self.planes, self.frame_len).map_err(|source| {
                Y4mError::Read {
                    path: self.path.clone(),
                    io: source,
                }
            })?;
        if got < self.frame_len {
            return Err(Y4mError::Truncated {
                path: self.path.clone(),
                index,
                expected: self.frame_len,
                got,
            });
        }
        self.fill(out, want);
        out.sequence = index;
        out.captured = None;
        self.frames_read += 1;
        Ok(true)
    }

    /// Converts the planes just read into `out`.
    fn fill(&self, out: &mut Frame, want: PixelFormat) {
        let (w, h) = (self.width, self.height);
        out.reset(w, h, want);
        let (luma, chroma) = self.planes[..self.frame_len].split_at(w * h);
        if want == PixelFormat::Gray8 {
            out.data_mut().copy_from_slice(luma);
            return;
        }
        let conv = YuvToRgb::new(self.range);
        let rows = out
            .data_mut()
            .chunks_exact_mut(w * 3)
            .zip(luma.chunks_exact(w));
        match (
            self.colorspace.chroma_shift(),
            self.colorspace.chroma_size(w, h),
        ) {
            (Some((sx, sy)), Some((cw, ch))) => {
                let (cb, cr) = chroma.split_at(cw * ch);
                for (row, (rgb_row, y_row)) in rows.enumerate() {
                    let start = (row >> sy) * cw;
                    let (cb_row, cr_row) = (&cb[start..start + cw], &cr[start..start + cw]);
                    for (x, (px, &y)) in rgb_row.chunks_exact_mut(3).zip(y_row).enumerate() {
                        let c = x >> sx;
                        px.copy_from_slice(&conv.rgb(y, cb_row[c], cr_row[c]));
                    }
                }
            }
            _ => {
                for (rgb_row, y_row) in rows {
                    for (px, &y) in rgb_row.chunks_exact_mut(3).zip(y_row) {
                        px.copy_from_slice(&conv.rgb(y, 128, 128));
                    }
                }
            }
        }
    }

    /// The capacity of the frame buffer, for the no-allocation test.
    #[cfg(test)]
    pub(super) fn planes_capacity(&self) -> usize {
        self.planes.capacity()
    }
}

/// The stream header's tags.
struct Header {
    width: Option<usize>,
    height: Option<usize>,
    frame_rate: (u32, u32),
    colorspace: Colorspace,
    range: ColorRange,
}

/// Why the tags are refused.
enum TagError {
    /// An unsupported `C` value.
    Unsupported(String),
    /// Anything else, said in words.
    Bad(String),
}

/// Parses the space-separated tags after the magic.
fn parse_tags(text: &str) -> Result<Header, TagError> {
    let mut header = Header {
        width: None,
        height: None,
        frame_rate: DEFAULT_FRAME_RATE,
        colorspace: Colorspace::Yuv420Jpeg,
        range: ColorRange::Limited,
    };
    for tag in text.split(' ').filter(|t| !t.is_empty()) {
        let mut chars = tag.chars();
        let (letter, value) = (chars.next(), chars.as_str());
        match letter {
            Some('W') => header.width = Some(dimension(tag, value)?),
            Some('H') => header.height = Some(dimension(tag, value)?),
            Some('F') => header.frame_rate = frame_rate(tag, value)?,
            Some('C') => {
                header.colorspace = Colorspace::from_tag(value)
                    .ok_or_else(|| TagError::Unsupported(value.to_owned()))?;
            }
            Some('X') => {
                if let Some(range) = value.strip_prefix("COLORRANGE=") {
                    header.range = match range {
                        "FULL" => ColorRange::Full,
                        "LIMITED" => ColorRange::Limited,
                        _ => {
                            return Err(TagError::Bad(format!(
                                "tag `{tag}`: expected XCOLORRANGE=FULL or XCOLORRANGE=LIMITED"
                            )))
                        }
                    };
                }
            }
            // Interlacing, aspect ratio, and tags of later versions.
            _ => log::debug!("y4m: ignoring header tag `{tag}`"),
        }
    }
    Ok(header)
}

/// A `W` or `H` value.
fn dimension(tag: &str, value: &str) -> Result<usize, TagError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_DIMENSION).contains(&n) => Ok(n),
        _ => Err(TagError::Bad(format!(
            "tag `{tag}`: expected a whole number of pixels from 1 to {MAX_DIMENSION}"
        ))),
    }
}

/// An `F` value, `num:den`; `0:0` (unknown) gives the default.
fn frame_rate(tag: &str, value: &str) -> Result<(u32, u32), TagError> {
    let parsed = value
        .split_once(':')
        .and_then(|(n, d)| Some((n.parse::<u32>().ok()?, d.parse::<u32>().ok()?)));
    match parsed {
        Some((0, 0)) => Ok(DEFAULT_FRAME_RATE),
        Some((n, d)) if n > 0 && d > 0 => Ok((n, d)),
        _ => Err(TagError::Bad(format!(
            "tag `{tag}`: expected F<numerator>:<denominator>, both positive"
        ))),
    }
}

/// Reads one line, newline included, of at most [`MAX_LINE`] bytes into
/// `line`; returns whether it ends with a newline (empty at end of file).
fn read_line<R: BufRead>(inner: &mut R, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    inner.take(MAX_LINE as u64).read_until(b'\n', line)?;
    Ok(line.last() == Some(&b'\n'))
}

/// Reads up to `len` bytes into the front of `buf`, growing it only as
/// data arrives (never past `len` plus what it had); returns the count.
fn read_planes<R: Read>(inner: &mut R, buf: &mut Vec<u8>, len: usize) -> io::Result<usize> {
    let mut got = 0;
    while got < len {
        if buf.len() <= got {
            buf.resize(len.min(got.saturating_add(GROW_STEP.max(got))), 0);
        }
        let end = buf.len().min(len);
        match inner.read(&mut buf[got..end]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The first `max` bytes, escaped and quoted, `…` when cut.
fn quoted(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let more = if bytes.len() > max { "…" } else { "" };
    format!("\"{}{more}\"", cut.escape_ascii())
}
