//! The GPU backend on a real Vulkan implementation (`--features gpu`; CI
//! runs it on Mesa's lavapipe, `scripts/test-gpu.sh`): the student's encoder
//! and head on the device against the same graphs on the CPU, the whole
//! pipeline with the encoder on the GPU against the CPU's masks on the demo
//! clip, and a graph the GPU steps lack refused at start with its node
//! named, the pipeline falling back to the CPU.
#![cfg(feature = "gpu")]

use std::path::{Path, PathBuf};

use sammix::backend::{self, BackendChoice, BackendError, BackendKind, BackendRequest};
use sammix::bundle::Bundle;
use sammix::convnet::gpu::GpuNet;
use sammix::convnet::ConvNet;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::npy;
use sammix::pipeline::Pipeline;
use sammix::source::SourceSpec;

use sammix::metrics::iou;

fn bundle_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn the_students_encoder_and_head_on_the_gpu_match_the_cpu() {
    let dir = bundle_dir("sammix-us-tiny");
    let (_, input) = npy::read_typed::<f32>(dir.join("reference/frame_000/input.npy")).unwrap();

    let mut cpu = ConvNet::load(&dir.join("encoder.onnx")).unwrap();
    let (c, h, w) = cpu.output_chw();
    let mut want = vec![0.0; c * h * w];
    cpu.run(&input, &mut want).unwrap();
    let mut gpu = GpuNet::new(&cpu).unwrap();
    eprintln!("adapter: {}", gpu.adapter());
    let mut got = vec![0.0; c * h * w];
    gpu.run_all(&input, &mut [&mut got[..]]).unwrap();
    let d = max_diff(&got, &want);
    eprintln!("encoder: max |gpu - cpu| {d:.2e}");
    assert!(d < 1e-3, "encoder: max |gpu - cpu| {d}");
    // Again on the same buffers: the same values.
    let mut again = vec![0.0; c * h * w];
    gpu.run_all(&input, &mut [&mut again[..]]).unwrap();
    assert_eq!(again, got);

    let mut head = ConvNet::load(&dir.join("classifier.onnx")).unwrap();
    let mut want: Vec<Vec<f32>> = (0..head.output_count())
        .map(|i| {
            let (c, h, w) = head.output_chw_at(i);
            vec![0.0; c * h * w]
        })
        .collect();
    head.run_all(&got, &mut want).unwrap();
    let mut gpu_head = GpuNet::new(&head).unwrap();
    let mut outs = want.clone();
    outs.iter_mut().for_each(|o| o.fill(f32::NAN));
    gpu_head.run_all(&got, &mut outs).unwrap();
    for (i, (g, w)) in outs.iter().zip(&want).enumerate() {
        let d = max_diff(g, w);
        eprintln!("head output {i}: max |gpu - cpu| {d:.2e}");
        assert!(d < 1e-3, "head output {i}: max |gpu - cpu| {d}");
    }

    // Wrong lengths are refused, not run.
    let err = gpu.run_all(&input[1..], &mut [&mut got[..]]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the GPU graph takes {} values, got {}",
            input.len(),
            input.len() - 1
        )
    );
}

/// The demo clip's first `n` frames.
fn clip_frames(dir: &Path, n: usize) -> Vec<Frame> {
    let mut src = SourceSpec::File(dir.join("demo/clip.y4m")).open().unwrap();
    let mut frames = Vec::new();
    let mut f = Frame::zeros(1, 1, PixelFormat::Gray8);
    while frames.len() < n && src.next_frame(&mut f).unwrap() {
        frames.push(f.clone());
    }
    frames
}

#[test]
fn the_pipeline_with_the_encoder_on_the_gpu_gives_the_cpus_masks() {
    let dir = bundle_dir("sammix-us-tiny");
    let bundle = Bundle::open(&dir).unwrap();
    let mut cpu = Pipeline::new(&bundle).unwrap();
    let mut gpu = Pipeline::new(&bundle).unwrap();
    let request = BackendRequest {
        choice: BackendChoice::Gpu,
        required_by: Some("the test".into()),
    };
    gpu.select_encoder_backend(&request).unwrap();
    assert_eq!(gpu.encoder_backend(), BackendKind::Gpu);
    assert!(
        gpu.encoder_backend_name().starts_with("GPU (Vulkan: "),
        "{}",
        gpu.encoder_backend_name()
    );
    let frames = clip_frames(&dir, 30);
    let (mut a, mut b) = (Mask::zeros(1, 1), Mask::zeros(1, 1));
    let mut segmented = 0;
    for f in &frames {
        let rc = cpu.process(f, &mut a).unwrap();
        let rg = gpu.process(f, &mut b).unwrap();
        assert_eq!(rc.outcome, rg.outcome, "frame {}", f.sequence);
        assert!(
            (rc.presence - rg.presence).abs() < 1e-3,
            "frame {}: presence {} vs {}",
            f.sequence,
            rc.presence,
            rg.presence
        );
        let m = iou(&a, &b).unwrap();
        assert!(m >= 0.98, "frame {}: mask IoU {m}", f.sequence);
        segmented += usize::from(rc.outcome == sammix::pipeline::Outcome::Segmented);
    }
    assert!(segmented >= 5, "{segmented} segmented frames");
    assert_eq!(gpu.encoder_fallback(), None);
}

#[test]
fn a_graph_the_gpu_lacks_is_refused_and_the_cpu_stands_in() {
    // The from-scratch bundle's encoder is a ViT (MatMul, Softmax, ...).
    let bundle = Bundle::open(bundle_dir("sammix-us-scratch")).unwrap();
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    let err = backend::start(BackendKind::Gpu, &pipeline.graphs().encoder).unwrap_err();
    assert!(matches!(err, BackendError::Unsupported { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("encoder.onnx: the GPU backend runs convolutional graphs only: ")
            && msg.contains("node "),
        "{msg}"
    );
    // Asked for (not required): the CPU runs it, and says why.
    let request = BackendRequest {
        choice: BackendChoice::Gpu,
        required_by: None,
    };
    pipeline.select_encoder_backend(&request).unwrap();
    assert_eq!(pipeline.encoder_backend(), BackendKind::Cpu);
    assert!(pipeline
        .encoder_fallback()
        .is_some_and(|w| w.contains("convolutional graphs only")));
}
