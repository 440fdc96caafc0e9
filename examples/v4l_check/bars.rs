//! RGB frames at 1280x720 against vivid's colour bars: RGB24 as the device
//! gives it, YUYV and NM12 through our YCbCr → RGB with the matrix and
//! range the device reports.
//!
//! vivid's test pattern generator (`v4l2-tpg`) draws 8 vertical bars, each
//! an eighth of the width: white, yellow, cyan, green, magenta, red, blue,
//! black (`test_pattern` 0: 75 % bars, R'G'B' 191 or 0; 1: 100 % bars, 255
//! or 0). The colours are R'G'B' as they are, whatever the colorspace; only
//! the Y'CbCr encoding follows it. Which encoding the driver reports at
//! 720p depends on the input: the webcam input (0) is sRGB, so BT.601
//! (limited range for YUYV), whatever the size; the HDMI input (3) at its
//! default CEA-861 1280x720p60 timings is Rec. 709, so BT.709.

use std::path::Path;

use sammix::frame::{Frame, PixelFormat};
use sammix::source::v4l::{Colour, Matrix, PixFormat, Range, V4lSource};

use crate::common::{opts, read, spec, v4l2_ctl, Check, Ctx};

const WIDTH: usize = 1280;
const HEIGHT: usize = 720;
/// Frames checked from each stream.
const FRAMES: usize = 3;
/// Bar colours of the 75 % bars (`TPG_COLOR_75_*`; white is
/// `TPG_COLOR_CSC_WHITE`), left to right.
const BARS_75: [[u8; 3]; 8] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
    [0, 0, 0],
];
/// The 100 % bars (`TPG_COLOR_100_*`).
const BARS_100: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];
const NAMES: [&str; 8] = [
    "white", "yellow", "cyan", "green", "magenta", "red", "blue", "black",
];
/// Pixels either side of a bar's centre that are sampled (bars are 160
/// wide: 64 pixels from the edges, where 4:2:2 chroma is the bar's own).
const HALF_WINDOW: usize = 16;
/// RGB24 reaches the frame unchanged: exact.
const RGB_TOLERANCE: u8 = 0;
/// The largest miss of one channel after YCbCr → RGB. v4l2-tpg computes
/// Y'CbCr in 12 bits and truncates it to 8 (`>> 16`, then `>> 4`), so each
/// of Y, Cb and Cr is up to one code low, never high. One code of limited
/// Y is 255/219 = 1.16 levels of RGB, one of Cb in B 1.8556 × 255/224 =
/// 2.11 (BT.709; BT.601: 1.772 × 255/224 = 2.02), one of Cr in R 1.79
/// (BT.601: 1.60): B can miss by 3.28 and R by 2.95 before rounding, 3
/// after (full range: 1 + 1.8556 = 2.86). Our 16.16 coefficients add less
/// than 0.01. A decoder with the other matrix misses some bar by 30 or
/// more, one with the other range by 13 or more (each case's note says by
/// how much, and the check fails when either is within the tolerance).
const YCBCR_TOLERANCE: u8 = 3;

/// vivid's inputs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Input 0: sRGB at every size.
    Webcam,
    /// Input 3 at its default timings, CEA-861 1280x720p60: Rec. 709.
    Hdmi,
}

impl Input {
    fn index(self) -> &'static str {
        match self {
            Input::Webcam => "0",
            Input::Hdmi => "3",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Input::Webcam => "webcam",
            Input::Hdmi => "HDMI 720p60",
        }
    }
}

/// One stream: where it comes from and what it must look like.
struct Case {
    input: Input,
    /// 75 or 100 (% bars).
    bars: u8,
    /// vivid's `quantization` control: "0" default, "1" full range.
    quantization: &'static str,
    fourcc: &'static [u8; 4],
    /// What the driver must report, as our source reads it.
    colour: Colour,
}

const fn case(input: Input, bars: u8, fourcc: &'static [u8; 4], colour: Colour) -> Case {
    Case {
        input,
        bars,
        quantization: "0",
        fourcc,
        colour,
    }
}

const SRGB_RGB: Colour = Colour {
    matrix: Matrix::Bt601,
    range: Range::Full,
};
const REC709_RGB: Colour = Colour {
    matrix: Matrix::Bt709,
    range: Range::Full,
};
const BT601_LIMITED: Colour = Colour {
    matrix: Matrix::Bt601,
    range: Range::Limited,
};
const BT709_LIMITED: Colour = Colour {
    matrix: Matrix::Bt709,
    range: Range::Limited,
};
const BT709_FULL: Colour = Colour {
    matrix: Matrix::Bt709,
    range: Range::Full,
};

/// RGB24 (`RGB3`) at 1280x720: the 75 % and 100 % bars from the webcam
/// input and the 75 % bars from the HDMI input, every sampled pixel exact.
pub fn rgb24(c: &Ctx) -> Check {
    run(
        &c.vivid,
        &[
            case(Input::Webcam, 75, b"RGB3", SRGB_RGB),
            case(Input::Webcam, 100, b"RGB3", SRGB_RGB),
            case(Input::Hdmi, 75, b"RGB3", REC709_RGB),
        ],
    )
}

/// YUYV at 1280x720 into RGB frames: the webcam input's BT.601 (75 % and
/// 100 % bars), the HDMI input's BT.709, limited and (vivid's
/// `quantization` control) full range, within [`YCBCR_TOLERANCE`].
pub fn yuyv(c: &Ctx) -> Check {
    run(
        &c.vivid,
        &[
            case(Input::Webcam, 75, b"YUYV", BT601_LIMITED),
            case(Input::Webcam, 100, b"YUYV", BT601_LIMITED),
            case(Input::Hdmi, 75, b"YUYV", BT709_LIMITED),
            Case {
                quantization: "1",
                ..case(Input::Hdmi, 75, b"YUYV", BT709_FULL)
            },
        ],
    )
}

/// The multi-planar node: YUYV and NM12 (two buffers, 4:2:0) at 1280x720
/// into RGB frames, BT.601 from the webcam input and BT.709 from HDMI.
pub fn mplane(c: &Ctx) -> Check {
    run(
        &c.vivid_mplane,
        &[
            case(Input::Webcam, 75, b"YUYV", BT601_LIMITED),
            case(Input::Webcam, 75, b"NM12", BT601_LIMITED),
            case(Input::Hdmi, 75, b"YUYV", BT709_LIMITED),
            case(Input::Hdmi, 75, b"NM12", BT709_LIMITED),
        ],
    )
}

fn run(device: &Path, cases: &[Case]) -> Check {
    let mut notes = Vec::new();
    for case in cases {
        let scene = Scene::set(device, case)?;
        let note = check_case(device, case);
        let restored = scene.restore();
        notes.push(note?);
        restored?;
    }
    Ok(notes.join("; "))
}

/// vivid's input and controls for one case, set back to the webcam input,
/// the 75 % bars and the default quantization when dropped (the checks
/// after this one expect them).
struct Scene<'a> {
    device: &'a Path,
    restored: bool,
}

impl<'a> Scene<'a> {
    fn set(device: &'a Path, case: &Case) -> Result<Scene<'a>, String> {
        let scene = Scene {
            device,
            restored: false,
        };
        // The input first: switching it sets the colorspace control.
        v4l2_ctl(device, &["-i", case.input.index()])?;
        let pattern = if case.bars == 100 { "1" } else { "0" };
        v4l2_ctl(
            device,
            &[
                "-c",
                &format!("test_pattern={pattern},quantization={}", case.quantization),
            ],
        )?;
        Ok(scene)
    }

    fn restore(mut self) -> Result<(), String> {
        self.restored = true;
        v4l2_ctl(self.device, &["-i", "0"])?;
        v4l2_ctl(self.device, &["-c", "test_pattern=0,quantization=0"]).map(|_| ())
    }
}

impl Drop for Scene<'_> {
    fn drop(&mut self) {
        if !self.restored {
            let _ = v4l2_ctl(self.device, &["-i", "0"]);
            let _ = v4l2_ctl(self.device, &["-c", "test_pattern=0,quantization=0"]);
        }
    }
}

/// Opens the case's stream, checks what was negotiated and reported, and
/// the bars of [`FRAMES`] frames; returns the case's note.
fn check_case(device: &Path, case: &Case) -> Result<String, String> {
    let s = spec(device, (WIDTH as u32, HEIGHT as u32), case.fourcc);
    let what = format!("{s} ({}, {} % bars)", case.input.name(), case.bars);
    let mut src = V4lSource::open(&s, opts(PixelFormat::Rgb8)).map_err(|e| e.to_string())?;
    let layout = src.layout();
    if (layout.width, layout.height) != (WIDTH, HEIGHT) || layout.format.fourcc().0 != *case.fourcc
    {
        return Err(format!("{what}: negotiated {layout}"));
    }
    if src.colour() != case.colour {
        return Err(format!(
            "{what}: the device's format reads as {:?}, expected {:?}",
            src.colour(),
            case.colour
        ));
    }
    let (bars, tolerance) = match (case.bars, layout.format.is_rgb()) {
        (100, true) => (&BARS_100, RGB_TOLERANCE),
        (100, false) => (&BARS_100, YCBCR_TOLERANCE),
        (_, true) => (&BARS_75, RGB_TOLERANCE),
        (_, false) => (&BARS_75, YCBCR_TOLERANCE),
    };
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut worst = [0u8; 8];
    let mut last = None;
    for _ in 0..FRAMES {
        read(&mut src, &mut frame)?;
        if last.is_some_and(|l| frame.sequence <= l) {
            return Err(format!(
                "{what}: sequence {} after {last:?}",
                frame.sequence
            ));
        }
        last = Some(frame.sequence);
        if frame.format() != PixelFormat::Rgb8 || (frame.width(), frame.height()) != (WIDTH, HEIGHT)
        {
            return Err(format!(
                "{what}: a {}x{} {:?} frame, expected {WIDTH}x{HEIGHT} Rgb8",
                frame.width(),
                frame.height(),
                frame.format()
            ));
        }
        let misses = bar_misses(&frame, bars);
        for (i, m) in misses.iter().enumerate() {
            if m.miss > tolerance {
                return Err(format!(
                    "{what}: frame {}: the {} bar at ({}, {}) is {:?}, the pattern's is {:?} \
                     (off by {}, at most {tolerance} allowed; {:?})",
                    frame.sequence, NAMES[i], m.at.0, m.at.1, m.rgb, bars[i], m.miss, case.colour
                ));
            }
            worst[i] = worst[i].max(m.miss);
        }
    }
    let mut note = format!(
        "{} {} {} % {}: {FRAMES} frames, per-bar max {worst:?} (tolerance {tolerance})",
        case.input.name(),
        case.fourcc.escape_ascii(),
        case.bars,
        describe(case.colour, layout.format),
    );
    if !layout.format.is_rgb() {
        // How far a decoder with the other matrix, or the other range,
        // would be off: the tolerance must not hide either.
        let other_matrix = Colour {
            matrix: match case.colour.matrix {
                Matrix::Bt601 => Matrix::Bt709,
                _ => Matrix::Bt601,
            },
            ..case.colour
        };
        let other_range = Colour {
            range: match case.colour.range {
                Range::Limited => Range::Full,
                Range::Full => Range::Limited,
            },
            ..case.colour
        };
        let by_matrix = decode_miss(case.colour, other_matrix, bars);
        let by_range = decode_miss(case.colour, other_range, bars);
        if by_matrix <= tolerance || by_range <= tolerance {
            return Err(format!(
                "{what}: a decoder with {} would miss by {by_matrix}, with {} by {by_range}: \
                 the tolerance {tolerance} cannot tell",
                describe(other_matrix, layout.format),
                describe(other_range, layout.format)
            ));
        }
        note.push_str(&format!(
            "; {} would miss by {by_matrix}, {} by {by_range}",
            describe(other_matrix, layout.format),
            describe(other_range, layout.format)
        ));
    }
    Ok(note)
}

fn describe(colour: Colour, format: PixFormat) -> String {
    let range = match colour.range {
        Range::Limited => "limited",
        Range::Full => "full",
    };
    if format.is_rgb() {
        return format!("{range}-range RGB");
    }
    let matrix = match colour.matrix {
        Matrix::Bt601 => "BT.601",
        Matrix::Bt709 => "BT.709",
        Matrix::Bt2020 => "BT.2020",
        Matrix::Smpte240m => "SMPTE 240M",
    };
    format!("{matrix} {range}")
}

/// One bar's worst pixel.
struct Miss {
    miss: u8,
    at: (usize, usize),
    rgb: [u8; 3],
}

/// The largest per-channel difference from each bar's colour over a
/// window around its centre, at a quarter, half and three quarters of the
/// height.
fn bar_misses(frame: &Frame, bars: &[[u8; 3]; 8]) -> [Miss; 8] {
    let (w, h) = (frame.width(), frame.height());
    std::array::from_fn(|i| {
        let centre = (2 * i + 1) * w / 16;
        let mut worst = Miss {
            miss: 0,
            at: (centre, h / 2),
            rgb: bars[i],
        };
        for y in [h / 4, h / 2, 3 * h / 4] {
            for x in centre - HALF_WINDOW..=centre + HALF_WINDOW {
                let px = &frame.data()[(y * w + x) * 3..][..3];
                let miss = px
                    .iter()
                    .zip(&bars[i])
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap_or(0);
                if miss > worst.miss {
                    worst = Miss {
                        miss,
                        at: (x, y),
                        rgb: [px[0], px[1], px[2]],
                    };
                }
            }
        }
        worst
    })
}

/// (Kr, Kb) and the scales of Y and of Cb/Cr (their codes per level of
/// R'G'B') and Y's offset, of one matrix and range.
fn encoding(colour: Colour) -> (f64, f64, f64, f64, f64) {
    let (kr, kb) = match colour.matrix {
        Matrix::Bt601 => (0.299, 0.114),
        Matrix::Bt709 => (0.2126, 0.0722),
        Matrix::Bt2020 => (0.2627, 0.0593),
        Matrix::Smpte240m => (0.212, 0.087),
    };
    match colour.range {
        Range::Limited => (kr, kb, 219.0 / 255.0, 224.0 / 255.0, 16.0),
        Range::Full => (kr, kb, 1.0, 1.0, 0.0),
    }
}

/// The largest miss over `bars` when each is encoded with `encoded`
/// (rounded to 8 bits) and decoded as `decoded`, both in floating point
/// here: a model of a decoder that picked `decoded`, kept apart from the
/// converter under test.
fn decode_miss(encoded: Colour, decoded: Colour, bars: &[[u8; 3]; 8]) -> u8 {
    let (kr, kb, y_scale, c_scale, y_offset) = encoding(encoded);
    let (dr, db, dy_scale, dc_scale, dy_offset) = encoding(decoded);
    let mut worst = 0;
    for bar in bars {
        let [r, g, b] = bar.map(f64::from);
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let code = |v: f64| v.round().clamp(0.0, 255.0);
        let yc = code(y_offset + y * y_scale);
        let cb = code(128.0 + (b - y) / (2.0 * (1.0 - kb)) * c_scale);
        let cr = code(128.0 + (r - y) / (2.0 * (1.0 - kr)) * c_scale);
        let y = (yc - dy_offset) / dy_scale;
        let (cb, cr) = ((cb - 128.0) / dc_scale, (cr - 128.0) / dc_scale);
        let r = y + 2.0 * (1.0 - dr) * cr;
        let b = y + 2.0 * (1.0 - db) * cb;
        let g = (y - dr * r - db * b) / (1.0 - dr - db);
        let miss = [r, g, b]
            .iter()
            .zip(bar)
            .map(|(v, want)| (code(*v) as u8).abs_diff(*want))
            .max()
            .unwrap_or(0);
        worst = worst.max(miss);
    }
    worst
}
