//! The prompt rule's later parts in the pipeline: `prompt.max_boxes` (one
//! decoder call per kept CAM component, the frame's logits their maximum)
//! and `prompt.refine_rounds` (the box of the last mask, its logits as
//! `mask_input`). The pure functions are unit-tested in
//! `src/prompt/boxes/tests.rs`; the recipe's vectors are replayed in
//! `tests/reference_prompt_parts.rs`.

#[macro_use]
mod common;

use std::path::Path;

use common::*;
use sammix::bundle::{Bundle, GraphRole};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::pipeline::{DecoderKind, FrameResult, Outcome, Pipeline, EMBED_DIM};
use sammix::source::SourceSpec;

/// The real bundle with `lines` added to its `[prompt]` table.
fn with_prompt(name: &str, lines: &str) -> TestBundle {
    let b = TestBundle::new(name);
    b.edit_manifest("[prompt]\n", &format!("[prompt]\n{lines}"));
    b
}

/// Hand-built graphs (the CAM is the pooled image, the decoder returns its
/// `mask_input` as every mask), and a mean of 0 so that every frame is
/// present.
fn hand_built(name: &str, lines: &str) -> TestBundle {
    let b = with_prompt(name, lines);
    b.edit_manifest("mean = [128.0]", "mean = [0.0]");
    let z = b.sizes();
    b.replace(
        GraphRole::Classifier,
        &classifier_named(z, "image").encode(),
    )
    .replace(GraphRole::Encoder, &encoder(z, EMBED_DIM as i64).encode())
    .replace(GraphRole::Decoder, &decoder(z, 4, 4 * z.e).encode());
    b
}

fn pipeline(b: &TestBundle, kind: DecoderKind) -> Pipeline {
    let bundle = Bundle::open(&b.dir).unwrap_or_else(|e| panic!("{e}"));
    Pipeline::with_decoder(&bundle, kind).unwrap_or_else(|e| panic!("{e}"))
}

/// A black 256² frame with two white squares: a larger one at 16..112 and a
/// smaller one at 160..224 (both axes).
fn two_squares() -> Frame {
    let mut data = vec![0u8; 256 * 256];
    for (i, p) in data.iter_mut().enumerate() {
        let (x, y) = (i % 256, i / 256);
        let a = (16..112).contains(&x) && (16..112).contains(&y);
        let b = (160..224).contains(&x) && (160..224).contains(&y);
        *p = if a || b { 255 } else { 0 };
    }
    Frame::new(256, 256, PixelFormat::Gray8, data).unwrap()
}

fn run(p: &mut Pipeline, frame: &Frame) -> (FrameResult, Mask) {
    let mut mask = Mask::zeros(1, 1);
    let r = p
        .process(frame, &mut mask)
        .unwrap_or_else(|e| panic!("{e}"));
    (r, mask)
}

#[test]
fn one_box_per_component_and_refinement() {
    let frame = two_squares();
    let (one, one_mask) = run(
        &mut pipeline(&hand_built("boxes-1", ""), DecoderKind::Tract),
        &frame,
    );
    assert_eq!(one.outcome, Outcome::Segmented, "{one:?}");
    assert_eq!(one.prompts, 1);
    let a = one.box_input.unwrap();
    assert!(a[0] < 16.0 && a[2] > 100.0 && a[2] < 150.0, "{a:?}");

    // Two boxes: the larger square's first (the result's box), the mask the
    // union (here the same: this decoder returns the dense prompt, which
    // holds both squares, for either box).
    let b = hand_built("boxes-2", "max_boxes = 2\n");
    let (two, two_mask) = run(&mut pipeline(&b, DecoderKind::Tract), &frame);
    assert_eq!(two.prompts, 2);
    assert_eq!(two.box_input, one.box_input);
    assert_eq!(two_mask.data(), one_mask.data());
    assert!(two.times.decoder_ms > 0.0);

    // Refinement: the box of the first call's mask, which covers both
    // squares, then the call again.
    for (lines, prompts) in [
        ("refine_rounds = 1\n", 1),
        ("max_boxes = 2\nrefine_rounds = 2\n", 2),
    ] {
        let b = hand_built("refine", lines);
        let (r, mask) = run(&mut pipeline(&b, DecoderKind::Tract), &frame);
        assert_eq!(r.prompts, prompts, "{lines}");
        let boxed = r.box_input.unwrap();
        assert!(boxed[0] < 16.0 && boxed[2] > 220.0, "{lines}: {boxed:?}");
        assert_eq!(mask.data(), one_mask.data(), "{lines}");
    }
}

/// On the real bundle and its demo clip: a second box adds the second
/// component's mask and changes nothing of the first's; refinement runs.
#[test]
fn more_boxes_only_add_to_the_mask() {
    let plain = TestBundle::new("plain");
    let two = with_prompt("two-boxes", "max_boxes = 2\n");
    let refined = with_prompt("refined", "max_boxes = 2\nrefine_rounds = 1\n");
    let mut plain = pipeline(&plain, DecoderKind::Native);
    let mut two = pipeline(&two, DecoderKind::Native);
    let mut refined = pipeline(&refined, DecoderKind::Native);
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch/demo/clip.y4m");
    let mut source = SourceSpec::File(clip).open().unwrap();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let (mut segmented, mut several) = (0, 0);
    for _ in 0..40 {
        if !source.next_frame(&mut frame).unwrap() {
            break;
        }
        let (a, mask_a) = run(&mut plain, &frame);
        let (b, mask_b) = run(&mut two, &frame);
        let (c, _) = run(&mut refined, &frame);
        assert_eq!(a.outcome, b.outcome);
        assert_eq!(a.outcome, c.outcome);
        if a.outcome != Outcome::Segmented {
            assert_eq!((a.prompts, b.prompts, c.prompts), (0, 0, 0));
            continue;
        }
        segmented += 1;
        assert_eq!(a.prompts, 1);
        assert!((1..=2).contains(&b.prompts));
        assert_eq!(b.prompts, c.prompts);
        assert_eq!(
            (b.box_input, b.mask_token, b.iou_prediction),
            (a.box_input, a.mask_token, a.iou_prediction)
        );
        let superset = mask_a
            .data()
            .iter()
            .zip(mask_b.data())
            .all(|(&x, &y)| x == 0 || y != 0);
        assert!(superset, "frame {}", frame.sequence);
        if b.prompts == 1 {
            assert_eq!(mask_a.data(), mask_b.data());
        } else {
            several += 1;
        }
    }
    eprintln!("{segmented} segmented frames, {several} with two boxes");
    assert!(segmented > 0);
}
