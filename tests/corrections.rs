//! Corrections: clicks edit the CAM's boxes and re-run only the decoder on
//! the frame's cached embeddings (the tiny bundle, its reference frame and
//! demo clip).

use std::path::{Path, PathBuf};

use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::pipeline::{Click, DecoderKind, Outcome, Pipeline};
use sammix::source::SourceSpec;

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch")
}

fn pipeline(kind: DecoderKind) -> (Bundle, Pipeline) {
    let bundle = Bundle::open(bundle_dir()).unwrap();
    let p = Pipeline::with_decoder(&bundle, kind).unwrap();
    (bundle, p)
}

fn reference_frame() -> Frame {
    image_io::read_frame(&bundle_dir().join("reference/frame_000_frame.png")).unwrap()
}

const fn click(x: f32, y: f32, positive: bool) -> Click {
    Click { x, y, positive }
}

#[test]
fn a_correction_reruns_only_the_decoder_and_moves_the_mask_the_clicked_way() {
    let (_, mut p) = pipeline(DecoderKind::Native);
    let frame = reference_frame();
    let mut mask = Mask::zeros(1, 1);
    let r = p.process(&frame, &mut mask).unwrap();
    assert_eq!(r.outcome, Outcome::Segmented);
    let area = mask.area();
    let encoded = p.encoder_runs();
    assert_eq!(encoded, 1);

    // A negative click inside the mask (and its box) takes target away.
    let c = p.correct(&[click(160.0, 110.0, false)], &mut mask).unwrap();
    assert_eq!((c.clicks, c.decoder_calls, c.encoder_ran), (1, 1, false));
    assert_eq!(c.mask_area_before, area);
    assert!(c.mask_area < area, "{c:?}");
    assert_eq!(mask.area(), c.mask_area);
    assert_eq!(
        (mask.width(), mask.height()),
        (frame.width(), frame.height())
    );

    // Clicks accumulate; a positive one outside every CAM box adds a box
    // (a second call), and target.
    let c = p.correct(&[click(40.0, 220.0, true)], &mut mask).unwrap();
    assert_eq!((c.clicks, c.decoder_calls, c.encoder_ran), (2, 2, false));
    assert!(c.mask_area > c.mask_area_before, "{c:?}");
    assert_eq!(
        p.encoder_runs(),
        encoded,
        "no encoder call during corrections"
    );

    // The next frame starts without clicks.
    p.process(&frame, &mut mask).unwrap();
    let c = p.correct(&[click(160.0, 110.0, false)], &mut mask).unwrap();
    assert_eq!(c.clicks, 1);
}

#[test]
fn bad_corrections_are_errors_that_say_why() {
    let (_, mut p) = pipeline(DecoderKind::Native);
    let mut mask = Mask::zeros(1, 1);
    let e = p.correct(&[click(1.0, 1.0, true)], &mut mask).unwrap_err();
    assert!(e.to_string().contains("process a frame first"), "{e}");
    let frame = reference_frame();
    p.process(&frame, &mut mask).unwrap();
    for bad in [
        click(-1.0, 5.0, true),
        click(5.0, frame.height() as f32, true),
        click(f32::NAN, 5.0, false),
    ] {
        let e = p.correct(&[bad], &mut mask).unwrap_err();
        assert!(e.to_string().contains("outside the 256x256 frame"), "{e}");
    }
    let e = p.correct(&[], &mut mask).unwrap_err();
    assert!(e.to_string().contains("at least one click"), "{e}");
    let too_many = vec![click(5.0, 5.0, true); 33];
    let e = p.correct(&too_many, &mut mask).unwrap_err();
    assert!(e.to_string().contains("more than 32 clicks"), "{e}");
}

/// Each correction call is an ordinary box prompt: tract's plan of the
/// decoder gives the same mask as the native decoder, up to int8 rounding.
#[test]
fn both_decoders_correct_alike() {
    let frame = reference_frame();
    let mut areas = Vec::new();
    for kind in [DecoderKind::Native, DecoderKind::Tract] {
        let (_, mut p) = pipeline(kind);
        let mut mask = Mask::zeros(1, 1);
        p.process(&frame, &mut mask).unwrap();
        let c = p
            .correct(
                &[click(40.0, 220.0, true), click(160.0, 110.0, false)],
                &mut mask,
            )
            .unwrap();
        assert_eq!((c.decoder_calls, c.encoder_ran), (2, false), "{kind:?}");
        areas.push(c.mask_area as f64);
    }
    assert!((areas[0] - areas[1]).abs() / areas[0] < 0.02, "{areas:?}");
}

/// A frame the classifier gated out before the encoder (this bundle's
/// classifier reads the image): a positive click runs the encoder once,
/// and says so.
#[test]
fn a_frame_gated_out_before_the_encoder_runs_it_once_for_a_correction() {
    let (bundle, mut p) = pipeline(DecoderKind::Native);
    let mut source = SourceSpec::File(bundle.path_of("demo/clip.y4m"))
        .open()
        .unwrap();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut mask = Mask::zeros(1, 1);
    let absent = loop {
        assert!(
            source.next_frame(&mut frame).unwrap(),
            "no absent frame in the demo clip"
        );
        if p.process(&frame, &mut mask).unwrap().outcome == Outcome::Absent {
            break frame.sequence;
        }
    };
    let before = p.encoder_runs();
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let c = p
        .correct(&[click(w / 2.0, h / 2.0, true)], &mut mask)
        .unwrap();
    assert_eq!(c.sequence, absent);
    assert!(c.encoder_ran);
    assert_eq!(c.decoder_calls, 1, "no CAM box: the click's box alone");
    assert_eq!(p.encoder_runs(), before + 1);
    // A second correction of the same frame reuses those embeddings.
    let c = p.correct(&[click(1.0, 1.0, false)], &mut mask).unwrap();
    assert!(!c.encoder_ran);
    assert_eq!(p.encoder_runs(), before + 1);
}
