//! The mask decoder, native against tract, one thread, on the same inputs:
//! `cargo bench --bench decoder` (add `-- --quick` for a short run).
//!
//! Graphs, each skipped (and said so) when its file is absent:
//!
//! - the bundle's `models/sammix-us-scratch/decoder.onnx` (int8 dynamic, E = 16);
//! - `models/vit-b-random/decoder.onnx` and `int8/decoder.onnx`: SAM ViT-B's
//!   decoder (E = 64, 1024² input) with random weights, not committed; make
//!   them with `cd models/recipe && ../../.venv/bin/python -m
//!   sammix_recipe.export_vit_b --out ../vit-b-random --skip-encoder --int8`.
//!
//! Inputs: embeddings of the real shape (1×256×E×E) drawn from N(0, 0.5²)
//! (a fixed seed), one box prompt (corners with labels 2 and 3, as the
//! pipeline feeds), a dense prompt of ±8 logits (a disc) with
//! `has_mask_input` = 1. `scripts/bench_decoder_ort.py` times onnxruntime on
//! the same files and shapes; `scripts/bench_decoders.sh` runs both.
//!
//! The ViT-B random exports name most LayerNorm parameters through
//! `Identity` aliases of one initializer; the native loader follows them, so
//! both engines load the files as they are.
//!
//! Benchmark ids: `native_<kernels>/<graph>` (the kernel level that ran, as
//! `Kernels::name()` says) and `tract/<graph>`. tract runs on one thread by
//! default, as does the native decoder.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use sammix::decoder::NativeDecoder;
use sammix::graph::{self, GraphSpec, InputSpec, Session, Tensor};

/// `image_embeddings` channels (SAM's prompt embedding dim).
const EMBED: usize = 256;

/// The repository: `$SAMMIX_ROOT` when the bench binary runs from a copy of
/// the tree on another machine, else where it was built.
fn root() -> PathBuf {
    std::env::var_os("SAMMIX_ROOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
        PathBuf::from,
    )
}

/// (label, file) of every graph to time.
fn graphs() -> Vec<(&'static str, PathBuf)> {
    let r = root();
    vec![
        (
            "us-tiny-int8",
            r.join("models/sammix-us-scratch/decoder.onnx"),
        ),
        ("vit-b-f32", r.join("models/vit-b-random/decoder.onnx")),
        (
            "vit-b-int8",
            r.join("models/vit-b-random/int8/decoder.onnx"),
        ),
    ]
}

/// One decoder call's inputs.
struct Inputs {
    embeddings: Vec<f32>,
    coords: [f32; 4],
    labels: [f32; 2],
    dense: Vec<f32>,
}

impl Inputs {
    /// Embeddings for E×E, a box in an `s`² input, a disc dense prompt.
    fn new(e: usize, s: f32) -> Inputs {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
        };
        let embeddings = (0..EMBED * e * e)
            .map(|_| {
                let (u, v) = (uniform().max(1e-7), uniform());
                0.5 * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
            })
            .collect();
        let n = 4 * e;
        let dense = (0..n * n)
            .map(|i| {
                let (y, x) = ((i / n) as f32 + 0.5, (i % n) as f32 + 0.5);
                let c = n as f32 / 2.0;
                let inside = (x - c).powi(2) + (y - c).powi(2) < (0.3 * n as f32).powi(2);
                if inside {
                    8.0
                } else {
                    -8.0
                }
            })
            .collect();
        Inputs {
            embeddings,
            coords: [0.25 * s, 0.3 * s, 0.7 * s, 0.75 * s],
            labels: [2.0, 3.0],
            dense,
        }
    }

    fn tensors(&self, e: usize) -> Vec<Tensor> {
        let n = 4 * e;
        vec![
            Tensor::from_shape(&[1, EMBED, e, e], &self.embeddings).unwrap(),
            Tensor::from_shape(&[1, 2, 2], &self.coords).unwrap(),
            Tensor::from_shape(&[1, 2], &self.labels).unwrap(),
            Tensor::from_shape(&[1, 1, n, n], &self.dense).unwrap(),
            Tensor::from_shape(&[1], &[1.0f32]).unwrap(),
        ]
    }
}

/// tract's plan of the decoder for one box, `orig_im_size` pinned and the
/// full-size `masks` output pruned (as the pipeline loads it).
fn tract_session(path: &Path, e: usize, s: f32) -> Session {
    let spec = GraphSpec {
        inputs: vec![
            InputSpec::shape("image_embeddings", vec![1, EMBED, e, e]),
            InputSpec::shape("point_coords", vec![1, 2, 2]),
            InputSpec::shape("point_labels", vec![1, 2]),
            InputSpec::shape("mask_input", vec![1, 1, 4 * e, 4 * e]),
            InputSpec::shape("has_mask_input", vec![1]),
            InputSpec::constant("orig_im_size", Tensor::from_shape(&[2], &[s, s]).unwrap()),
        ],
        outputs: vec!["iou_predictions".into(), "low_res_masks".into()],
        ..GraphSpec::default()
    };
    graph::load(path, &spec).unwrap().session().unwrap()
}

fn decoder(c: &mut Criterion) {
    let mut g = c.benchmark_group("decoder");
    // Flat sampling: every sample the same number of calls, so a 100 ms
    // ViT-B decoder call does not stretch the run to minutes.
    g.sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(8))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2));
    for (label, path) in graphs() {
        if !path.is_file() {
            eprintln!(
                "decoder bench: skipped {label}: {} is absent",
                path.display()
            );
            continue;
        }
        let mut native = match NativeDecoder::from_onnx(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("decoder bench: skipped {label}: the native decoder refuses it: {e}");
                continue;
            }
        };
        let (e, m, s) = (
            native.embedding_size(),
            native.mask_count(),
            native.input_size(),
        );
        let inputs = Inputs::new(e, s);
        let (mut low, mut iou) = (vec![0.0; m * 16 * e * e], vec![0.0; m]);
        let call = |native: &mut NativeDecoder, low: &mut [f32], iou: &mut [f32]| {
            native
                .run(
                    black_box(&inputs.embeddings),
                    &inputs.coords,
                    &inputs.labels,
                    &inputs.dense,
                    1.0,
                    low,
                    iou,
                )
                .unwrap()
        };
        // One call outside the timing, so that the comparison below has
        // native outputs even when a filter or `--list` skips the bench.
        call(&mut native, &mut low, &mut iou);
        let id = BenchmarkId::new(format!("native_{}", native.kernels().name()), label);
        g.bench_function(id, |b| b.iter(|| call(&mut native, &mut low, &mut iou)));
        let mut tract = tract_session(&path, e, s);
        // Same work? The outputs of one call, compared (not timed).
        let outs = tract.run(inputs.tensors(e)).unwrap();
        let view = |t: &Tensor| {
            t.try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        let (t_iou, t_low) = (view(&outs[0]), view(&outs[1]));
        let (mut inter, mut union) = (0usize, 0usize);
        for (&a, &b) in low.iter().zip(&t_low) {
            inter += usize::from(a > 0.0 && b > 0.0);
            union += usize::from(a > 0.0 || b > 0.0);
        }
        let d_iou = iou
            .iter()
            .zip(&t_iou)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "decoder bench: {label}: native vs tract on these inputs: mask IoU {:.4} (all {m} masks), |Δ iou_predictions| {d_iou:.2e}",
            if union == 0 { 1.0 } else { inter as f64 / union as f64 }
        );
        g.bench_function(BenchmarkId::new("tract", label), |b| {
            b.iter_batched(
                || inputs.tensors(e),
                |t| tract.run(t).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    decoder(&mut c);
    c.final_summary();
}
