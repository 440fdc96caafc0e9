//! The student's encoder on our own kernels (`sammix::convnet`) against
//! the bundle's reference embeddings (onnxruntime, same graph) and against
//! tract on the same input, on each reference frame of the default bundle;
//! and graphs it must refuse.

use std::path::{Path, PathBuf};

use sammix::convnet::{ConvNet, ConvNetError};
use sammix::graph::{self, GraphSpec, InputSpec, Tensor};
use sammix::npy;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bundle() -> PathBuf {
    root().join("models/sammix-us-tiny")
}

fn f32s(path: &Path) -> (Vec<usize>, Vec<f32>) {
    npy::read_typed::<f32>(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Largest absolute difference, and the largest reference magnitude.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let m = b.iter().map(|v| v.abs()).fold(0.0, f32::max);
    (d, m)
}

#[test]
fn the_students_encoder_matches_onnxruntime_and_tract() {
    let path = bundle().join("encoder.onnx");
    let mut net = ConvNet::load(&path).unwrap();
    assert_eq!(net.output_chw(), (256, 32, 32));
    let (shape, input) = f32s(&bundle().join("reference/frame_000/input.npy"));
    assert_eq!(shape, [1, 1, 256, 256]);
    let (eshape, want) = f32s(&bundle().join("reference/frame_000/image_embeddings.npy"));
    assert_eq!(eshape, [1, 256, 32, 32]);
    let mut got = vec![f32::NAN; want.len()];
    net.run(&input, &mut got).unwrap();
    let (d, m) = max_diff(&got, &want);
    // The graph's weights are f16 read as f32 on both sides: only the order
    // of the sums differs (the embeddings are LayerNorm'd, |v| up to ~10).
    assert!(d < 2e-3, "native vs onnxruntime: max |Δ| {d} (max |v| {m})");

    let spec = GraphSpec::new(vec![InputSpec::shape("image", [1, 1, 256, 256])]);
    let plan = graph::load(&path, &spec).unwrap();
    let t = Tensor::from_shape(&[1, 1, 256, 256], &input).unwrap();
    let out = plan.run(vec![t]).unwrap();
    let tract = out[0].try_as_plain_ram().unwrap();
    let tract = tract.as_slice::<f32>().unwrap();
    assert_eq!(tract.len(), got.len());
    let (d, m) = max_diff(&got, tract);
    assert!(d < 2e-3, "native vs tract: max |Δ| {d} (max |v| {m})");

    // A second run on the same buffers gives the same values.
    let mut again = vec![0.0; want.len()];
    net.run(&input, &mut again).unwrap();
    assert_eq!(again, got);
}

#[test]
fn wrong_lengths_are_errors() {
    let mut net = ConvNet::load(&bundle().join("encoder.onnx")).unwrap();
    let mut out = vec![0.0; 256 * 32 * 32];
    let err = net.run(&[0.0; 10], &mut out).unwrap_err();
    assert!(matches!(err, ConvNetError::Length { got: 10, .. }), "{err}");
    let input = vec![0.0; net.input_len()];
    let err = net.run(&input, &mut out[..5]).unwrap_err();
    assert!(matches!(err, ConvNetError::Length { got: 5, .. }), "{err}");
}

#[test]
fn graphs_outside_its_ops_are_refused_naming_the_node() {
    // The from-scratch bundle's encoder is a ViT: MatMul, Softmax, ...
    let path = root().join("models/sammix-us-scratch/encoder.onnx");
    let err = ConvNet::load(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConvNetError::Unsupported { .. }), "{msg}");
    assert!(
        msg.contains("encoder.onnx") && msg.contains("does not run natively"),
        "{msg}"
    );
    // Not a graph at all.
    let err = ConvNet::load(&bundle().join("MODEL_CARD.md")).unwrap_err();
    assert!(matches!(err, ConvNetError::Graph { .. }), "{err}");
}

#[test]
fn the_pipeline_on_the_native_encoder_gives_the_reference_mask() {
    use sammix::backend::{BackendKind, NativeCpu};
    use sammix::bundle::Bundle;
    use sammix::frame::Mask;
    use sammix::image_io;
    use sammix::pipeline::{Outcome, Pipeline};

    let b = Bundle::open(bundle()).unwrap();
    let mut pipeline = Pipeline::new(&b).unwrap();
    let native = NativeCpu::new(&pipeline.graphs().encoder).unwrap();
    pipeline.set_encoder_backend(Box::new(native), None);
    assert_eq!(pipeline.encoder_backend(), BackendKind::Cpu);
    assert_eq!(pipeline.encoder_backend_name(), "CPU (native kernels)");
    let frame = image_io::read_frame(&bundle().join("reference/frame_000_frame.png")).unwrap();
    let mut mask = Mask::zeros(1, 1);
    let r = pipeline.process(&frame, &mut mask).unwrap();
    assert_eq!(r.outcome, Outcome::Segmented);
    let (shape, want) =
        npy::read_typed::<u8>(bundle().join("reference/frame_000/final_mask.npy")).unwrap();
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

#[test]
fn every_kernel_level_agrees_with_scalar() {
    use sammix::kernels::{Kernels, Level};

    let path = bundle().join("encoder.onnx");
    let (_, input) = f32s(&bundle().join("reference/frame_000/input.npy"));
    let run = |k: Kernels| {
        let mut net = ConvNet::load(&path).unwrap().with_kernels(k);
        let (c, h, w) = net.output_chw();
        let mut out = vec![0.0; c * h * w];
        net.run(&input, &mut out).unwrap();
        out
    };
    let scalar = run(Kernels::scalar());
    let mut checked = 0;
    for &level in Level::ALL {
        let Some(k) = Kernels::for_level(level) else {
            continue; // this CPU does not run it
        };
        let (d, m) = max_diff(&run(k), &scalar);
        assert!(d < 1e-3, "{level:?} vs scalar: max |Δ| {d} (max |v| {m})");
        checked += 1;
    }
    assert!(checked >= 1, "no kernel level ran");
}
