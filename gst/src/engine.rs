//! One bundle's pipeline and the buffers it reuses: a buffer in, the
//! buffer out with the result attached (and drawn).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::{VideoFrameRef, VideoInfo};
use sammix::bundle::{Bundle, TrustedKeys};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::overlay::{self, OverlayStyle};
use sammix::pipeline::{DecoderKind, FrameResult, Pipeline, Stability};
use sammix::source::v4l::Colour;

use crate::convert::{self, Converter};
use crate::meta;

/// Where the bundled model lives in the source tree (as `sammix run`).
const BUNDLED: &str = "models/sammix-us-tiny";

/// The bundle `sammix run` opens without `--bundle`: `$SAMMIX_BUNDLE`, else
/// `models/sammix-us-tiny` under the current folder, else the one in the
/// source tree this plugin was built from.
pub fn default_bundle() -> PathBuf {
    if let Some(dir) = std::env::var_os("SAMMIX_BUNDLE") {
        return dir.into();
    }
    let here = Path::new(BUNDLED);
    if here.is_dir() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(BUNDLED)
}

impl Drop for Engine {
    /// Deactivates the mask pool: masks still attached to buffers
    /// downstream are freed when those go, not returned.
    fn drop(&mut self) {
        if let Some((pool, _)) = &self.masks {
            let _ = pool.set_active(false);
        }
    }
}

/// What a frame gave.
pub struct Done {
    /// The buffer, with the meta (and the overlay).
    pub buffer: gst::Buffer,
    /// The pipeline's result.
    pub result: FrameResult,
    /// Time in the pipeline (conversion and drawing excluded).
    pub inference: Duration,
    /// Something that went wrong without spoiling the frame (a mask file
    /// not written, the overlay not drawn).
    pub warning: Option<String>,
}

/// The bundle's pipeline with the element's per-frame buffers.
pub struct Engine {
    pipeline: Pipeline,
    want: PixelFormat,
    frame: Frame,
    mask: Mask,
    picture: Frame,
    style: OverlayStyle,
    converter: Converter,
    caps: Option<(VideoInfo, Colour)>,
    masks: Option<(gst::BufferPool, usize)>,
    mask_dir: Option<PathBuf>,
    stability: Option<bool>,
}

impl Engine {
    /// Opens and checks the bundle (signature against the compiled-in
    /// board profile's keys, as the C API) and loads its graphs. The error
    /// names the folder.
    pub fn open(
        dir: &Path,
        decoder: DecoderKind,
        mask_dir: Option<PathBuf>,
    ) -> Result<Engine, String> {
        let opened = catch_unwind(|| -> Result<(Pipeline, PixelFormat), String> {
            let keys = TrustedKeys::from_profile(sammix::board::profile::current())
                .map_err(|e| e.to_string())?;
            let bundle = Bundle::open_trusted(dir, &keys).map_err(|e| e.to_string())?;
            // gray8 for a bundle that takes the luma, rgb8 for an RGB one
            let want = bundle.manifest().input.color.pixel_format();
            let pipeline = Pipeline::with_decoder(&bundle, decoder)
                .map_err(|e| format!("cannot load the graphs of bundle {}: {e}", dir.display()))?;
            Ok((pipeline, want))
        });
        let (mut pipeline, want) = match opened {
            Ok(r) => r?,
            Err(_) => {
                return Err(format!(
                    "bundle {}: internal error (a panic)",
                    dir.display()
                ))
            }
        };
        // as `sammix run`: frames follow each other; the encoder beside the
        // classifier when there are two cores (same masks either way)
        pipeline.set_agreement(true);
        pipeline.set_overlap(std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2));
        if let Some(d) = &mask_dir {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("mask-dir {}: cannot create it: {e}", d.display()))?;
        }
        Ok(Engine {
            pipeline,
            want,
            frame: Frame::zeros(1, 1, PixelFormat::Gray8),
            mask: Mask::zeros(1, 1),
            picture: Frame::zeros(1, 1, PixelFormat::Rgb8),
            style: OverlayStyle::default(),
            converter: Converter::default(),
            caps: None,
            masks: None,
            mask_dir,
            stability: None,
        })
    }

    /// Runs one blank frame at the model's input size (loads lazily built
    /// state, gives a first latency figure), then forgets it.
    pub fn warm_up(&mut self) -> Duration {
        let s = self.pipeline.manifest().input.size as usize;
        self.frame.reset(s, s, self.want);
        self.frame.data_mut().fill(0);
        let start = Instant::now();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.pipeline.process(&self.frame, &mut self.mask)
        }));
        start.elapsed()
    }

    /// Frame-to-frame smoothing on or off, set before the first frame
    /// (which forgets the warm-up frame) and when it changes.
    pub fn ensure_stability(&mut self, on: bool) {
        if self.stability != Some(on) {
            self.pipeline.set_stability(on.then(Stability::default));
            self.pipeline.set_agreement(true);
            self.stability = Some(on);
        }
    }

    /// New caps: the element checked they parse.
    pub fn set_caps(&mut self, info: VideoInfo) {
        let colour = convert::colour(&info);
        self.caps = Some((info, colour));
    }

    /// A buffer of `size` bytes for a mask, from a pool (no allocation once
    /// the pool has as many as are in flight).
    fn mask_buffer(&mut self, size: usize) -> gst::Buffer {
        if self.masks.as_ref().is_none_or(|(_, s)| *s != size) {
            if let Some((old, _)) = self.masks.take() {
                let _ = old.set_active(false);
            }
            let pool = gst::BufferPool::new();
            let mut config = pool.config();
            config.set_params(None, size as u32, 2, 0);
            let ok = pool.set_config(config).is_ok() && pool.set_active(true).is_ok();
            self.masks = ok.then_some((pool, size));
        }
        let pooled = self
            .masks
            .as_ref()
            .and_then(|(p, _)| p.acquire_buffer(None).ok());
        pooled
            .unwrap_or_else(|| gst::Buffer::with_size(size).unwrap_or_else(|_| gst::Buffer::new()))
    }

    /// Segments `buffer` (frame number `index`): attaches the result, draws
    /// the overlay when `draw`, writes the mask when there is a mask folder.
    /// On failure the buffer comes back untouched with the reason.
    pub fn process(
        &mut self,
        buffer: gst::Buffer,
        index: u64,
        draw: bool,
    ) -> Result<Done, (gst::Buffer, String)> {
        let Some((info, colour)) = self.caps.clone() else {
            return Err((buffer, "a buffer before any caps".into()));
        };
        let read = match VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info) {
            Ok(vf) => self.converter.read(&vf, colour, self.want, &mut self.frame),
            Err(e) => Err(format!("cannot map the buffer as {info:?}: {e}")),
        };
        if let Err(e) = read {
            return Err((buffer, format!("frame {index}: {e}")));
        }
        self.frame.sequence = index;
        let start = Instant::now();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            self.pipeline.process(&self.frame, &mut self.mask)
        }));
        let inference = start.elapsed();
        let result = match ran {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err((buffer, format!("frame {index}: {e}"))),
            Err(_) => {
                return Err((
                    buffer,
                    format!("frame {index}: internal error in the pipeline (a panic)"),
                ))
            }
        };
        let (w, h) = (self.mask.width(), self.mask.height());
        let mut mask_buffer = self.mask_buffer(w * h);
        if let Ok(mut map) = mask_buffer.make_mut().map_writable() {
            for (o, &v) in map.iter_mut().zip(self.mask.data()) {
                *o = if v != 0 { 255 } else { 0 };
            }
        }
        let mut buffer = buffer;
        let mut warning = None;
        {
            let b = buffer.make_mut();
            if let Err(e) = meta::attach(b, index, &result, mask_buffer, w, h) {
                return Err((buffer, format!("frame {index}: meta not attached: {e}")));
            }
            if draw {
                overlay::render(
                    &self.frame,
                    &self.mask,
                    result.box_frame,
                    result.presence,
                    result.review.is_some(),
                    &self.style,
                    &mut self.picture,
                );
                let drawn = match VideoFrameRef::from_buffer_ref_writable(b, &info) {
                    Ok(mut vf) => convert::write_back(&self.picture, &self.frame, colour, &mut vf),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = drawn {
                    warning = Some(format!("frame {index}: overlay not drawn: {e}"));
                }
            }
        }
        if let Some(dir) = &self.mask_dir {
            let path = dir.join(format!("{index:06}.png"));
            if let Err(e) = sammix::image_io::write_mask_png(&path, &self.mask) {
                warning = Some(format!("{}: mask not written: {e}", path.display()));
            }
        }
        Ok(Done {
            buffer,
            result,
            inference,
            warning,
        })
    }
}
