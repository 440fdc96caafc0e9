//! The fuzz targets: one function per parser, each taking arbitrary bytes.
//! A target passes when it returns, whatever the bytes; a panic or an
//! abort is a bug. AFL++ drives them (`fuzz/src/bin/*.rs`, `scripts/fuzz.sh`);
//! `tests/fuzz_corpora.rs` replays every seed and every past crash through
//! them in `cargo test`. The same file is included by both.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use sammix::board::schema::Profile;
use sammix::bundle::{Manifest, PromptParams, TrustedKey, TrustedKeys};
use sammix::frame::{Frame, PixelFormat};
use sammix::npy::NpyArray;
use sammix::prompt::PromptEngine;
use sammix::source::v4l::{convert, convert_planes, Colour, Layout, Matrix, PixFormat, Range};
use sammix::y4m::Y4mReader;

/// A target: arbitrary bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target, by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("profile", profile),
    ("y4m", y4m),
    ("npy", npy),
    ("png", png),
    ("pixels", pixels),
    ("mjpeg", mjpeg),
    ("prompt", prompt),
    ("graph", graph),
    ("signature", signature),
];

/// The largest frame a converter target asks for (pixels), so that the
/// fuzzer spends its time on the code, not on allocating.
const MAX_PIXELS: usize = 1 << 16;

/// Bytes consumed from the front of the input.
struct Take<'a>(&'a [u8]);

impl Take<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn f32(&mut self) -> f32 {
        f32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// A scratch file for the targets whose parser reads a path: one per
/// process (AFL runs one input at a time in each).
fn scratch(name: &str, data: &[u8]) -> PathBuf {
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("sammix-fuzz-{}-{name}", std::process::id()));
    std::fs::write(&path, data).expect("cannot write the fuzz scratch file");
    path
}

/// `sammix.toml` bytes: UTF-8 check, TOML, schema 1's fields and values.
pub fn manifest(data: &[u8]) {
    let _ = Manifest::from_bytes(data, Path::new("fuzz/sammix.toml"));
}

/// A board profile (the build script's parser, also the library's).
pub fn profile(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = Profile::parse("board/fuzz.toml", text) {
            let _ = p.to_rust();
            let _ = TrustedKeys::from_profile(&p);
        }
    }
}

/// A Y4M clip: the header, then up to 8 frames, gray and RGB alternately.
pub fn y4m(data: &[u8]) {
    let Ok(mut r) = Y4mReader::new(Cursor::new(data), "fuzz.y4m") else {
        return;
    };
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    for i in 0..8 {
        let want = if i % 2 == 0 {
            PixelFormat::Gray8
        } else {
            PixelFormat::Rgb8
        };
        match r.read_frame(&mut frame, want) {
            Ok(true) => {}
            _ => break,
        }
    }
}

/// A `.npy` file, then its data widened to f32 where the type allows.
pub fn npy(data: &[u8]) {
    if let Ok(a) = NpyArray::from_bytes(data) {
        let _ = a.clone().into_vec::<f32>();
        let _ = a.to_bytes();
    }
}

/// A PNG read as a frame and as a mask.
pub fn png(data: &[u8]) {
    let path = scratch("png", data);
    let _ = sammix::image_io::read_frame(&path);
    let _ = sammix::image_io::read_mask(&path);
}

/// A capture buffer through the V4L2 pixel-format converters: the first
/// bytes choose the format, size, stride, colour and output; the rest is
/// the buffer (short, long, or anything).
pub fn pixels(data: &[u8]) {
    let mut t = Take(data);
    let format = PixFormat::ALL[usize::from(t.byte()) % PixFormat::ALL.len()];
    convert_with(format, &mut t);
}

/// An MJPEG capture buffer (one JPEG) through the same converter.
pub fn mjpeg(data: &[u8]) {
    let mut t = Take(data);
    let format = PixFormat::ALL
        .into_iter()
        .find(|f| f.is_compressed())
        .expect("MJPG is a format");
    convert_with(format, &mut t);
}

fn convert_with(format: PixFormat, t: &mut Take<'_>) {
    let width = usize::from(t.u16() % 512);
    let height = usize::from(t.u16() % 512);
    let pad = usize::from(t.byte());
    let flags = t.byte();
    if width.saturating_mul(height) > MAX_PIXELS {
        return;
    }
    let colour = Colour {
        matrix: [
            Matrix::Bt601,
            Matrix::Bt709,
            Matrix::Bt2020,
            Matrix::Smpte240m,
        ][usize::from(flags & 3)],
        range: if flags & 4 == 0 {
            Range::Limited
        } else {
            Range::Full
        },
    };
    let want = if flags & 8 == 0 {
        PixelFormat::Gray8
    } else {
        PixelFormat::Rgb8
    };
    let stride = if flags & 16 == 0 {
        0
    } else {
        format.min_stride(width) + pad
    };
    let Ok(layout) = Layout::new(format, width, height, stride) else {
        return;
    };
    let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
    let _ = convert(t.0, &layout, colour, want, &mut out);
    // The same bytes as two buffers (a multi-planar device's planes), cut
    // where the flags' top bits and the pad byte say.
    let cut = (layout.luma_bytes() + pad * usize::from(flags >> 5)).min(t.0.len());
    let (luma, chroma) = t.0.split_at(cut);
    let _ = convert_planes(luma, chroma, &layout, colour, want, &mut out);
}

/// The CAM → prompt rule on any CAM: NaN, ±Inf, huge, flat, one hot cell,
/// and any parameters (the manifest validation bounds them; the engine must
/// not panic even outside those bounds).
pub fn prompt(data: &[u8]) {
    let mut t = Take(data);
    let e = [1usize, 2, 4, 8, 16][usize::from(t.byte()) % 5];
    let dense = 4 * e;
    let size = dense * (1 + usize::from(t.byte() % 4));
    let params = PromptParams {
        cam_threshold: t.f32(),
        min_component_px: u32::from(t.u16()),
        box_margin: t.f32(),
        dense_logit: t.f32(),
        max_boxes: u32::from(t.byte() % 8),
        refine_rounds: u32::from(t.byte() % 4),
    };
    let mut engine = PromptEngine::new(params, e, e, size, dense);
    let cam: Vec<f32> = (0..e * e).map(|_| t.f32()).collect();
    let _ = engine.compute(&cam);
    // A CAM of the wrong length is an error, not a panic.
    let _ = engine.compute(&cam[..cam.len() / 2]);
}

/// ONNX bytes loaded into a tract plan (the hostile-graph guard: every tract
/// step runs under `catch_unwind`, a panic there is an error).
pub fn graph(data: &[u8]) {
    let path = scratch("graph.onnx", data);
    let _ = sammix::graph::load(&path, &sammix::graph::GraphSpec::default());
}

/// A `sammix.toml.minisig` against the signature fixture's manifest and key.
pub fn signature(data: &[u8]) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        if Path::new(env!("CARGO_MANIFEST_DIR")).ends_with("fuzz") {
            "../tests/data/signing"
        } else {
            "tests/data/signing"
        },
    );
    let dir = std::env::temp_dir().join(format!("sammix-fuzz-sig-{}", std::process::id()));
    if !dir.join("sammix.toml").is_file() {
        let _ = std::fs::create_dir_all(&dir);
        for e in std::fs::read_dir(fixture.join("bundle"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::copy(e.path(), dir.join(e.file_name()));
        }
    }
    let _ = std::fs::write(dir.join("sammix.toml.minisig"), data);
    let mut keys = TrustedKeys::none();
    if let Ok(k) = TrustedKey::from_file(&fixture.join("trusted.pub")) {
        keys.add(k);
    }
    let _ = sammix::bundle::Bundle::open_trusted(&dir, &keys);
    let _ = sammix::bundle::Bundle::open(&dir);
}
