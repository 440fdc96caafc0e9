//! The whole pipeline with the classifier and the encoder on our own
//! kernels (`SAMMIX_CONVNET=native`, what release builds do by default) on
//! the default bundle's reference frame: the mask of the reference vectors.
//! One test in its own binary: it sets the variable for the process before
//! any pipeline is built.

use std::path::PathBuf;

use sammix::bundle::Bundle;
use sammix::frame::Mask;
use sammix::image_io;
use sammix::npy;
use sammix::pipeline::{Outcome, Pipeline};

#[test]
fn the_pipeline_on_the_native_kernels_gives_the_reference_mask() {
    std::env::set_var("SAMMIX_CONVNET", "native");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-tiny");
    let b = Bundle::open(&dir).unwrap();
    let mut pipeline = Pipeline::new(&b).unwrap();
    assert_eq!(pipeline.encoder_backend_name(), "CPU (native kernels)");
    assert_eq!(pipeline.classifier_backend_name(), "CPU (native kernels)");
    let frame = image_io::read_frame(&dir.join("reference/frame_000_frame.png")).unwrap();
    let mut mask = Mask::zeros(1, 1);
    let r = pipeline.process(&frame, &mut mask).unwrap();
    assert_eq!(r.outcome, Outcome::Segmented);
    let (_, want_logit) =
        npy::read_typed::<f32>(dir.join("reference/frame_000/logits.npy")).unwrap();
    let want_presence = 1.0 / (1.0 + (-want_logit[0]).exp());
    assert!(
        (r.presence - want_presence).abs() < 1e-4,
        "{} vs {want_presence}",
        r.presence
    );
    let (shape, want) =
        npy::read_typed::<u8>(dir.join("reference/frame_000/final_mask.npy")).unwrap();
    assert_eq!(shape, [mask.height(), mask.width()]);
    let (mut inter, mut union) = (0usize, 0usize);
    for y in 0..mask.height() {
        for x in 0..mask.width() {
            let (a, b) = (mask.get(x, y), want[y * mask.width() + x] != 0);
            inter += usize::from(a && b);
            union += usize::from(a || b);
        }
    }
    let iou = inter as f64 / union.max(1) as f64;
    assert!(iou >= 0.98, "IoU {iou} against the reference mask");
}
