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

#[test]
fn the_students_presence_head_matches_onnxruntime_and_tract() {
    // The classifier reads the embeddings: convolutions, a global max for
    // the logit (an affine of it) and a sigmoid CAM.
    let path = bundle().join("classifier.onnx");
    let mut net = ConvNet::load(&path).unwrap();
    assert_eq!(net.output_count(), 2);
    let (_, emb) = f32s(&bundle().join("reference/frame_000/image_embeddings.npy"));
    let (_, want_logit) = f32s(&bundle().join("reference/frame_000/logits.npy"));
    let (_, want_cam) = f32s(&bundle().join("reference/frame_000/cam.npy"));
    let mut logit = vec![f32::NAN; 1];
    let mut cam = vec![f32::NAN; want_cam.len()];
    net.run_all(&emb, &mut [&mut logit, &mut cam]).unwrap();
    let (d, _) = max_diff(&logit, &want_logit);
    assert!(d < 1e-3, "logit {logit:?} vs onnxruntime {want_logit:?}");
    let (d, _) = max_diff(&cam, &want_cam);
    assert!(d < 1e-4, "cam: max |Δ| {d}");

    let spec = GraphSpec::new(vec![InputSpec::shape("image_embeddings", [1, 256, 32, 32])]);
    let plan = graph::load(&path, &spec).unwrap();
    let out = plan
        .run(vec![Tensor::from_shape(&[1, 256, 32, 32], &emb).unwrap()])
        .unwrap();
    let tract_logit = out[0].try_as_plain_ram().unwrap();
    let tract_cam = out[1].try_as_plain_ram().unwrap();
    let (d, _) = max_diff(&logit, tract_logit.as_slice::<f32>().unwrap());
    assert!(d < 1e-4, "logit vs tract: {d}");
    let (d, _) = max_diff(&cam, tract_cam.as_slice::<f32>().unwrap());
    assert!(d < 1e-5, "cam vs tract: {d}");
}
