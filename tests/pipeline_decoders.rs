//! The whole-frame pipeline with the native decoder (the default) against
//! the pipeline with tract's decoder, on the bundle's reference frames and
//! the first frames of its demo clip.
//!
//! Everything before the decoder is the same code on the same tract plans,
//! so presence, outcome and box must be *equal*. The decoders compute the
//! same int8 graph and differ only where f32 rounding moves an activation
//! across a quantization step (`tests/native_decoder.rs`: mask logits agree
//! to ~2e-5 on most calls, ~0.2 on a few). Asserted on every frame both
//! segmented: the same emptiness, predicted IoU within 0.01, and the final
//! masks (frame size) at IoU ≥ 0.98, or, for a mask too small for IoU to
//! mean much (under 1000 px, where one boundary pixel all round is already
//! IoU ≈ 0.9), every differing pixel within one pixel of the tract mask's
//! boundary. Each frame's numbers are printed with `--nocapture`.

use std::path::{Path, PathBuf};

use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::pipeline::{DecoderKind, FrameResult, Outcome, Pipeline};
use sammix::source::SourceSpec;
use serde::Deserialize;

use sammix::metrics::iou;

/// Frames of the demo clip compared (the clip has 160; the test runs in
/// debug builds too, where the native decoder's kernels are unoptimized).
const CLIP_FRAMES: usize = 48;

/// Below this many target pixels a mask is judged by its boundary.
const SMALL_MASK_PX: usize = 1000;

#[derive(Debug, Deserialize)]
struct Index {
    frames: Vec<RefFrame>,
}

#[derive(Debug, Deserialize)]
struct RefFrame {
    name: String,
    frame: String,
}

fn bundle_dir() -> PathBuf {
    match std::env::var_os("SAMMIX_REFERENCE_BUNDLE") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch"),
    }
}

/// Whether every pixel where `got` and `want` differ has an 8-neighbour of
/// the other value in `want` (it sits on `want`'s boundary).
fn differs_only_on_the_boundary(got: &Mask, want: &Mask) -> bool {
    let (w, h) = (want.width() as isize, want.height() as isize);
    let data = want.data();
    let at = |x: isize, y: isize| {
        (x >= 0 && y >= 0 && x < w && y < h).then(|| data[(y * w + x) as usize] != 0)
    };
    got.data()
        .iter()
        .zip(data)
        .enumerate()
        .filter(|(_, (g, t))| (**g != 0) != (**t != 0))
        .all(|(i, (_, t))| {
            let (x, y) = (i as isize % w, i as isize / w);
            let inside = *t != 0;
            (-1..=1).any(|dy| (-1..=1).any(|dx| at(x + dx, y + dy).is_some_and(|v| v != inside)))
        })
}

/// The frames: the reference frames, then the demo clip's first frames.
fn frames(dir: &Path) -> Vec<(String, Frame)> {
    let reference = dir.join("reference");
    let text = std::fs::read_to_string(reference.join("index.json")).unwrap();
    let index: Index = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(String, Frame)> = index
        .frames
        .iter()
        .map(|f| {
            let frame = image_io::read_frame(&reference.join(&f.frame)).unwrap();
            (f.name.clone(), frame)
        })
        .collect();
    assert!(!out.is_empty(), "no reference frames");
    let clip = dir.join("demo/clip.y4m");
    let mut source = SourceSpec::File(clip).open().unwrap();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    for i in 0..CLIP_FRAMES {
        if !source.next_frame(&mut frame).unwrap() {
            break;
        }
        out.push((format!("clip {i:03}"), frame.clone()));
    }
    out
}

/// What differs between the two results of one frame, if anything.
fn compare(
    name: &str,
    (a, ma): (&FrameResult, &Mask),
    (b, mb): (&FrameResult, &Mask),
) -> Vec<String> {
    let mut failures = Vec::new();
    if a.presence != b.presence || a.outcome != b.outcome || a.box_input != b.box_input {
        failures.push(format!(
            "{name}: before the decoder, native {:?} {:?} {:?} vs tract {:?} {:?} {:?}",
            a.presence, a.outcome, a.box_input, b.presence, b.outcome, b.box_input
        ));
    }
    if a.outcome != Outcome::Segmented {
        if !ma.is_empty() || !mb.is_empty() {
            failures.push(format!("{name}: a mask on a frame not segmented"));
        }
        return failures;
    }
    let iou = iou(ma, mb).unwrap();
    let (pa, pb) = (a.iou_prediction.unwrap(), b.iou_prediction.unwrap());
    eprintln!(
        "{name}: mask IoU {iou:.4}, area {} vs {}, token {:?} vs {:?}, predicted IoU {pa:.4} vs {pb:.4}",
        ma.area(),
        mb.area(),
        a.mask_token,
        b.mask_token
    );
    if ma.is_empty() != mb.is_empty() {
        failures.push(format!("{name}: mask areas {} vs {}", ma.area(), mb.area()));
    }
    if (pa - pb).abs() > 0.01 {
        failures.push(format!("{name}: predicted IoU {pa} vs {pb}"));
    }
    let small = ma.area().max(mb.area()) < SMALL_MASK_PX;
    if iou < 0.98 && !(small && differs_only_on_the_boundary(ma, mb)) {
        failures.push(format!(
            "{name}: mask IoU {iou:.4} (areas {} vs {})",
            ma.area(),
            mb.area()
        ));
    }
    failures
}

#[test]
fn native_and_tract_decoders_give_the_same_masks() {
    let dir = bundle_dir();
    let bundle = Bundle::open(&dir).unwrap();
    let mut native = Pipeline::new(&bundle).unwrap();
    assert_eq!(native.decoder(), DecoderKind::Native);
    let mut tract = Pipeline::with_decoder(&bundle, DecoderKind::Tract).unwrap();
    assert_eq!(tract.decoder(), DecoderKind::Tract);
    let (mut ma, mut mb) = (Mask::zeros(1, 1), Mask::zeros(1, 1));
    let mut failures = Vec::new();
    let mut segmented = 0;
    let mut worst = 1.0f64;
    for (name, frame) in frames(&dir) {
        let a = native.process(&frame, &mut ma).unwrap();
        let b = tract.process(&frame, &mut mb).unwrap();
        assert_eq!(a.sequence, b.sequence);
        if a.outcome == Outcome::Segmented {
            segmented += 1;
            worst = worst.min(iou(&ma, &mb).unwrap());
        }
        failures.extend(compare(&name, (&a, &ma), (&b, &mb)));
    }
    eprintln!("{segmented} frames segmented, worst mask IoU {worst:.4}");
    assert!(segmented >= 3, "only {segmented} frames segmented");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One pipeline switching decoders back and forth gives what a pipeline
/// of each kind gives: switching loads the other decoder once and keeps no
/// state from the previous frame's decoder.
#[test]
fn switching_decoders_changes_nothing_but_the_decoder() {
    let dir = bundle_dir();
    let bundle = Bundle::open(&dir).unwrap();
    let mut one = Pipeline::new(&bundle).unwrap();
    let mut native = Pipeline::new(&bundle).unwrap();
    let mut tract = Pipeline::with_decoder(&bundle, DecoderKind::Tract).unwrap();
    let (mut m1, mut m2) = (Mask::zeros(1, 1), Mask::zeros(1, 1));
    let mut checked = 0;
    for (i, (name, frame)) in frames(&dir).into_iter().take(12).enumerate() {
        let kind = DecoderKind::ALL[i % 2];
        one.set_decoder(kind).unwrap();
        let a = one.process(&frame, &mut m1).unwrap();
        let b = match kind {
            DecoderKind::Native => native.process(&frame, &mut m2).unwrap(),
            DecoderKind::Tract => tract.process(&frame, &mut m2).unwrap(),
        };
        let (mut a, mut b) = (a, b);
        a.times = Default::default();
        b.times = Default::default();
        assert_eq!(a, b, "{name} with the {kind} decoder");
        assert_eq!(m1, m2, "{name} with the {kind} decoder: masks");
        checked += usize::from(a.outcome == Outcome::Segmented);
    }
    assert!(checked > 0);
}

/// The encoder overlapped with the classifier (`Pipeline::set_overlap`)
/// gives the very results of the sequential pipeline, frame after frame
/// (the overlap starts only after a present frame, so the clip's runs of
/// presence and absence exercise both branches and the discarded encode).
#[test]
fn overlapping_the_encoder_changes_no_result() {
    let dir = bundle_dir();
    let bundle = Bundle::open(&dir).unwrap();
    let mut plain = Pipeline::new(&bundle).unwrap();
    let mut overlapped = Pipeline::new(&bundle).unwrap();
    overlapped.set_overlap(true);
    assert!(overlapped.overlap() && !plain.overlap());
    let (mut ma, mut mb) = (Mask::zeros(1, 1), Mask::zeros(1, 1));
    let (mut segmented, mut after_present, mut was_present) = (0, 0, false);
    for (name, frame) in frames(&dir) {
        let a = plain.process(&frame, &mut ma).unwrap();
        let b = overlapped.process(&frame, &mut mb).unwrap();
        assert_eq!(
            (
                a.presence,
                a.outcome,
                a.box_input,
                a.mask_token,
                a.iou_prediction
            ),
            (
                b.presence,
                b.outcome,
                b.box_input,
                b.mask_token,
                b.iou_prediction
            ),
            "{name}"
        );
        assert!(ma.data() == mb.data(), "{name}: masks differ");
        segmented += usize::from(a.outcome == Outcome::Segmented);
        after_present += usize::from(was_present);
        was_present = a.outcome != Outcome::Absent;
    }
    assert!(
        segmented >= 3 && after_present >= 3,
        "{segmented} segmented, {after_present} overlapped"
    );
}
