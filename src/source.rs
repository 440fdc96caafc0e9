//! Where frames come from: a source spec (`file:clip.y4m`, `images:DIR`,
//! …) opened into a [`FrameSource`], and the ground truth that may come
//! with it.
//!
//! | spec | source |
//! |---|---|
//! | `file:PATH` (or a bare path ending in `.y4m`) | a YUV4MPEG2 clip (mono, 420, 422, 444) in the pixel format asked for |
//! | `images:DIR` | the `*.png` of `DIR/images/` if that folder exists, else of `DIR`, in name order |
//! | `synthetic[:SEED]` | a deterministic moving phantom with exact ground truth ([`synthetic`]) |
//! | `v4l:/dev/videoN[:WIDTHxHEIGHT[:FOURCC]]` | a V4L2 capture device, live ([`v4l`]; feature `v4l`), in the pixel format asked for |
//!
//! Pixel format: [`SourceSpec::open_as`] takes the one the bundle wants
//! ([`InputColor::pixel_format`](crate::bundle::InputColor::pixel_format):
//! gray8 for a `gray` bundle, rgb8 for an `rgb` one). A clip or a camera
//! converts to it: a gray bundle gets the Y plane byte for byte, an RGB
//! bundle the BT.601 conversion of Y, Cb and Cr. PNG images come as they
//! are (gray or RGB) and the synthetic phantom is gray: the pipeline's
//! preprocessing applies the bundle's `input.color` to either format, so
//! converting them first would change nothing the model sees (a gray
//! bundle's luma would only be rounded to a byte) and would take the
//! colour out of an image's overlay.
//!
//! Ground truth: masks named like the frames. For `images:DIR` with a
//! `DIR/images/` folder, `DIR/masks/` (when present) holds a mask per image,
//! same file name. For a clip, masks are `NNNNNN.png` by frame index in a
//! folder given with [`SourceSpec`]'s caller (the bundled demo clip's are in
//! `demo/masks/`).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::frame::{Frame, Mask, PixelFormat};
use crate::image_io::{self, ImageError};
use crate::y4m::{Y4mError, Y4mReader};

pub mod synthetic;
pub mod v4l;
pub mod watched;

pub use watched::Watched;

/// An error opening or reading a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The spec is not one this build understands.
    #[error("source {spec:?}: {problem}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong, with what is expected.
        problem: String,
    },
    /// A folder of images that cannot be listed or holds none.
    #[error("{}: {problem}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A Y4M clip that cannot be read.
    #[error(transparent)]
    Y4m(#[from] Y4mError),
    /// An image that cannot be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A V4L2 device that cannot be opened or read.
    #[error(transparent)]
    V4l(#[from] v4l::V4lError),
    /// A read that did not return in time ([`Watched`]); it is still
    /// blocked, on a thread of its own.
    #[error(
        "{source_name}: no frame within {:.1} s and the read has not returned (a wedged driver or file system?)",
        waited.as_secs_f64()
    )]
    Stalled {
        /// The source.
        source_name: String,
        /// How long it was waited for.
        waited: std::time::Duration,
    },
    /// A [`Watched`] source whose reader thread cannot start or has ended.
    #[error("{source_name}: {problem}")]
    Reader {
        /// The source.
        source_name: String,
        /// What happened.
        problem: String,
    },
}

/// A parsed source spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A Y4M clip.
    File(PathBuf),
    /// A folder of PNG images.
    Images(PathBuf),
    /// The synthetic phantom with this seed.
    Synthetic(u64),
    /// A V4L2 capture device.
    V4l(v4l::V4lSpec),
}

impl SourceSpec {
    /// Parses `file:PATH`, `images:DIR`, or a bare path (`.y4m`: a clip; a
    /// directory: images).
    pub fn parse(spec: &str) -> Result<SourceSpec, SourceError> {
        let bad = |problem: &str| SourceError::BadSpec {
            spec: spec.to_string(),
            problem: problem.to_string(),
        };
        if spec == "synthetic" {
            return Ok(SourceSpec::Synthetic(0));
        }
        let (kind, rest) = spec.split_once(':').unwrap_or(("", spec));
        match kind {
            "file" if !rest.is_empty() => Ok(SourceSpec::File(rest.into())),
            "images" if !rest.is_empty() => Ok(SourceSpec::Images(rest.into())),
            "file" | "images" => Err(bad("a path must follow the colon")),
            "synthetic" => rest
                .parse()
                .map(SourceSpec::Synthetic)
                .map_err(|_| bad("the seed after synthetic: must be a whole number")),
            "v4l" => v4l::V4lSpec::parse(rest)
                .map(SourceSpec::V4l)
                .map_err(|p| bad(&p)),
            _ => {
                let path = Path::new(spec);
                if path.is_dir() {
                    Ok(SourceSpec::Images(path.into()))
                } else if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("y4m"))
                {
                    Ok(SourceSpec::File(path.into()))
                } else {
                    Err(bad(
                        "expected file:CLIP.y4m, images:DIR, a .y4m path or a folder of PNGs",
                    ))
                }
            }
        }
    }

    /// Opens the source for a gray bundle: [`SourceSpec::open_as`] with
    /// [`PixelFormat::Gray8`].
    pub fn open(&self) -> Result<Box<dyn FrameSource>, SourceError> {
        self.open_as(PixelFormat::Gray8)
    }

    /// Opens the source; a clip or a capture device delivers `want` (see
    /// the module docs), images and the phantom their own format.
    pub fn open_as(&self, want: PixelFormat) -> Result<Box<dyn FrameSource>, SourceError> {
        Ok(match self {
            SourceSpec::File(path) => Box::new(Y4mSource::open(path, want)?),
            SourceSpec::Images(dir) => Box::new(ImageFolder::open(dir)?),
            SourceSpec::Synthetic(seed) => Box::new(Synthetic {
                seed: *seed,
                next: 0,
            }),
            SourceSpec::V4l(spec) => v4l::open(
                spec,
                &v4l::V4lOptions {
                    output: want,
                    ..v4l::V4lOptions::default()
                },
            )?,
        })
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::File(p) => write!(f, "file:{}", p.display()),
            SourceSpec::Images(p) => write!(f, "images:{}", p.display()),
            SourceSpec::Synthetic(seed) => write!(f, "synthetic:{seed}"),
            SourceSpec::V4l(spec) => write!(f, "{spec}"),
        }
    }
}

/// A stream of frames.
pub trait FrameSource: Send {
    /// Reads the next frame into `frame` (reusing its buffer); `Ok(false)` at
    /// the end of the stream. Sets the frame's sequence number.
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError>;

    /// A name for frame `sequence` (an image's file stem, or the index as
    /// `NNNNNN`), used for output files and ground-truth lookup.
    fn frame_name(&self, sequence: u64) -> String;

    /// Frames per second the source runs at, if it says.
    fn frame_rate(&self) -> Option<(u32, u32)>;

    /// Number of frames, when known in advance.
    fn len_hint(&self) -> Option<u64>;

    /// The ground truth that comes with the source, if any.
    fn truth(&self) -> Option<Truth>;
}

/// Where the ground truth of a source's frames comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    /// Mask PNGs named like the frames (`NAME.png`).
    Folder(PathBuf),
    /// The synthetic phantom with this seed (exact, computed).
    Synthetic(u64),
}

impl Truth {
    /// Writes the ground truth of frame `sequence` (named `name`) into
    /// `mask`.
    pub fn load(&self, name: &str, sequence: u64, mask: &mut Mask) -> Result<(), SourceError> {
        match self {
            Truth::Folder(dir) => {
                *mask = image_io::read_mask(&dir.join(format!("{name}.png")))?;
            }
            Truth::Synthetic(seed) => {
                synthetic::truth(*seed, sequence, mask);
            }
        }
        Ok(())
    }
}

/// The synthetic phantom as a source (it never ends).
#[derive(Debug)]
pub struct Synthetic {
    seed: u64,
    next: u64,
}

impl FrameSource for Synthetic {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        synthetic::render(self.seed, self.next, frame);
        frame.captured = None;
        self.next += 1;
        Ok(true)
    }

    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }

    fn frame_rate(&self) -> Option<(u32, u32)> {
        Some(synthetic::FRAME_RATE)
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn truth(&self) -> Option<Truth> {
        Some(Truth::Synthetic(self.seed))
    }
}

/// A Y4M clip, read as one pixel format: [`PixelFormat::Gray8`] is the Y
/// plane byte for byte, [`PixelFormat::Rgb8`] its BT.601 conversion (a
/// `mono` clip gives R = G = B); see [`crate::y4m`].
#[derive(Debug)]
pub struct Y4mSource {
    reader: Y4mReader,
    want: PixelFormat,
}

impl Y4mSource {
    /// Opens the clip and reads its header; its frames come as `want`.
    pub fn open(path: &Path, want: PixelFormat) -> Result<Y4mSource, SourceError> {
        Ok(Y4mSource {
            reader: Y4mReader::open(path)?,
            want,
        })
    }
}

impl FrameSource for Y4mSource {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        Ok(self.reader.read_frame(frame, self.want)?)
    }

    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }

    fn frame_rate(&self) -> Option<(u32, u32)> {
        Some(self.reader.frame_rate())
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn truth(&self) -> Option<Truth> {
        None
    }
}

/// PNG images of a folder, in file-name order.
#[derive(Debug)]
pub struct ImageFolder {
    files: Vec<PathBuf>,
    truth: Option<PathBuf>,
    next: usize,
}

impl ImageFolder {
    /// Lists `DIR/images/*.png` (with `DIR/masks/` as ground truth when it
    /// exists) or, without an `images/` subfolder, `DIR/*.png`.
    pub fn open(dir: &Path) -> Result<ImageFolder, SourceError> {
        let (images, truth) = if dir.join("images").is_dir() {
            let masks = dir.join("masks");
            (dir.join("images"), masks.is_dir().then_some(masks))
        } else {
            (dir.to_path_buf(), None)
        };
        let folder_err = |problem: String| SourceError::Folder {
            path: images.clone(),
            problem,
        };
        let entries =
            std::fs::read_dir(&images).map_err(|e| folder_err(format!("cannot list: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| folder_err(format!("cannot list: {e}")))?
                .path();
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png"))
            {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(folder_err("no .png images here".into()));
        }
        files.sort();
        Ok(ImageFolder {
            files,
            truth,
            next: 0,
        })
    }

    /// The image files, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl FrameSource for ImageFolder {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(false);
        };
        image_io::read_frame_into(path, frame)?;
        frame.sequence = self.next as u64;
        frame.captured = None;
        self.next += 1;
        Ok(true)
    }

    fn frame_name(&self, sequence: u64) -> String {
        usize::try_from(sequence)
            .ok()
            .and_then(|i| self.files.get(i))
            .and_then(|p| p.file_stem())
            .map_or_else(
                || format!("{sequence:06}"),
                |s| s.to_string_lossy().into_owned(),
            )
    }

    fn frame_rate(&self) -> Option<(u32, u32)> {
        None
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }

    fn truth(&self) -> Option<Truth> {
        self.truth.clone().map(Truth::Folder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            SourceSpec::parse("file:a/b.y4m").unwrap(),
            SourceSpec::File("a/b.y4m".into())
        );
        assert_eq!(
            SourceSpec::parse("images:/data").unwrap(),
            SourceSpec::Images("/data".into())
        );
        assert_eq!(
            SourceSpec::parse("clip.Y4M").unwrap(),
            SourceSpec::File("clip.Y4M".into())
        );
        let spec = SourceSpec::parse("v4l:/dev/video0:640x360:NV12").unwrap();
        assert_eq!(spec.to_string(), "v4l:/dev/video0:640x360:NV12");
        assert!(matches!(spec, SourceSpec::V4l(_)));
        assert!(SourceSpec::parse("v4l:").is_err());
        assert!(SourceSpec::parse("file:").is_err());
        let err = SourceSpec::parse("nonsense.mp4").unwrap_err().to_string();
        assert!(err.contains("expected file:CLIP.y4m"), "{err}");
    }

    #[test]
    fn an_empty_or_missing_folder_is_an_error() {
        let dir = std::env::temp_dir().join(format!("sammix-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = ImageFolder::open(&dir).unwrap_err().to_string();
        assert!(err.contains("no .png images"), "{err}");
        let err = ImageFolder::open(&dir.join("absent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot list"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A colour clip read for an RGB bundle gives RGB frames with the
    /// clip's colours (through BT.601, within the fixed point's rounding);
    /// read for a gray bundle, the Y plane.
    #[test]
    fn a_colour_clip_reads_as_the_bundle_wants() {
        use crate::bundle::InputColor;
        use crate::y4m::{Colorspace, Y4mWriter};

        // Columns of 2×2-aligned colours, so 4:2:0 averages nothing away.
        let colours: [[u8; 3]; 5] = [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [200, 120, 40],
            [128, 128, 128],
        ];
        let (w, h) = (2 * colours.len(), 4);
        let mut picture = Frame::zeros(w, h, PixelFormat::Rgb8);
        for (i, px) in picture.data_mut().chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&colours[(i % w) / 2]);
        }
        let dir = std::env::temp_dir().join(format!("sammix-src-colour-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for colorspace in [Colorspace::Yuv444, Colorspace::Yuv420Jpeg] {
            let path = dir.join(format!("{colorspace:?}.y4m"));
            let mut writer = Y4mWriter::create(&path, w, h, (25, 1), colorspace).unwrap();
            for _ in 0..2 {
                writer.write_frame(&picture).unwrap();
            }
            writer.finish().unwrap();
            let spec = SourceSpec::File(path);

            let mut src = spec.open_as(InputColor::Rgb.pixel_format()).unwrap();
            let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
            let mut n = 0;
            while src.next_frame(&mut frame).unwrap() {
                assert_eq!(frame.format(), PixelFormat::Rgb8, "{colorspace:?}");
                assert_eq!((frame.width(), frame.height()), (w, h));
                for (i, (got, want)) in frame
                    .data()
                    .chunks_exact(3)
                    .zip(picture.data().chunks_exact(3))
                    .enumerate()
                {
                    let close = got.iter().zip(want).all(|(&g, &e)| g.abs_diff(e) <= 2);
                    assert!(close, "{colorspace:?} pixel {i}: {got:?}, wrote {want:?}");
                }
                n += 1;
            }
            assert_eq!(n, 2);

            let mut src = spec.open_as(InputColor::Gray.pixel_format()).unwrap();
            assert!(src.next_frame(&mut frame).unwrap());
            assert_eq!(frame.format(), PixelFormat::Gray8);
            for (i, &y) in frame.data().iter().enumerate() {
                let luma = picture.luma(i % w, i / w);
                assert!(
                    (f32::from(y) - luma).abs() <= 0.5,
                    "{colorspace:?} pixel {i}"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_demo_clip_reads_as_gray_frames() {
        let clip =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch/demo/clip.y4m");
        let mut src = SourceSpec::File(clip).open().unwrap();
        let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
        let mut n = 0;
        while src.next_frame(&mut frame).unwrap() {
            assert_eq!(frame.sequence, n);
            n += 1;
        }
        assert_eq!(n, 160);
        assert_eq!((frame.width(), frame.height()), (256, 256));
        assert_eq!(src.frame_name(7), "000007");
    }
}
