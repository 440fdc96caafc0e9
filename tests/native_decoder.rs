//! The native decoder (`sammix::decoder`) against tract running the same
//! `decoder.onnx`.
//!
//! What is compared, and why it is fair:
//!
//! - **int8 graph, native int8** (the bundle's `decoder.onnx`,
//!   [`Precision::AsGraph`]) vs tract on that graph: both compute the same
//!   integer products from activations quantized with the same
//!   `DynamicQuantizeLinear` rule, so they differ only where f32 rounding
//!   (summation order, `sin`, `exp`, LayerNorm) moves an activation across a
//!   quantization step, and one flipped code moves a logit by a scale step.
//!   Most calls agree to ~2e-5 in the logits; a few to ~0.2. Asserted: mask
//!   (logits > 0) IoU ≥ 0.96 for every mask, Dice pooled over a call's
//!   masks ≥ 0.99, predicted IoU within 0.01 (measured: 0.978, 0.995, 0.004;
//!   each case is printed with `--nocapture`).
//! - **f32 graph, native f32** vs tract on the f32 export
//!   (`models/recipe/runs/export/f32/decoder.onnx` as the bundle command
//!   leaves it, or the file `SAMMIX_F32_DECODER` names; not committed: the
//!   test says it skipped when the file is absent): the same arithmetic up
//!   to rounding, so IoU ≥ 0.995 and predicted IoU within 1e-3 (measured:
//!   IoU 1, |Δ iou_pred| ≤ 4e-7, |Δ logit| ≤ 5e-5).
//! - **ViT-B-size f32 graph** (`models/vit-b-random/decoder.onnx`, E = 64,
//!   random weights, not committed: skipped with a message when absent):
//!   loads as exported (its LayerNorm parameters are `Identity` aliases of
//!   one initializer) and agrees with tract as the f32 export does: IoU ≥
//!   0.995, predicted IoU within 1e-3 (measured: IoU 1, |Δ iou_pred| ≤
//!   3e-7, |Δ logit| ≤ 6e-7, on random embeddings and prompts).
//! - **int8 graph, native dequantized f32** ([`Precision::F32`]) vs tract on
//!   the int8 graph: *not* the same computation (the graph also quantizes
//!   the input of every linear layer to 8 bits at run time; the
//!   positional-encoding matmuls stay f32), so it measures what the
//!   activation quantization costs: Dice pooled over a call's masks ≥ 0.98
//!   and every mask of ≥ 1% of the pixels ≥ 0.95. Measured on the bundle
//!   (SAMMIX_F32_DECODER=models/recipe/runs_v2/export/f32/decoder.onnx):
//!   pooled ≥ 0.988, worst mask 0.978; the int8 graph against the f32
//!   export's true weights is no closer (pooled ≥ 0.989, worst mask 0.983),
//!   so 0.99 on every call is the int8 graph's own limit, not the native
//!   decoder's.
//!
//! Inputs: the bundle's reference frames (`reference/frame_*/`: the
//! encoder's embeddings, the CAM box and dense prompt onnxruntime was fed),
//! and random prompts (boxes, foreground/background points with the official
//! padding point, no dense prompt) on the real embeddings and on random
//! ones of the same spread.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sammix::decoder::{DecoderError, NativeDecoder, Options, Precision};
use sammix::graph::{self, GraphSpec, InputSpec, Plan, Session, Tensor};
use sammix::npy;

const EMBED: usize = 256;

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch")
}

fn f32_export() -> PathBuf {
    match std::env::var_os("SAMMIX_F32_DECODER") {
        Some(p) => PathBuf::from(p),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/recipe/runs/export/f32/decoder.onnx")
        }
    }
}

/// One decoder call's inputs.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    embeddings: Vec<f32>,
    coords: Vec<f32>,
    labels: Vec<f32>,
    mask: Vec<f32>,
    has_mask: f32,
}

/// Outputs: `iou[M]`, `low[M × 4E × 4E]`.
#[derive(Debug, Clone)]
struct Out {
    iou: Vec<f32>,
    low: Vec<f32>,
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-7), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

fn read(dir: &Path, file: &str) -> Vec<f32> {
    npy::read_typed::<f32>(dir.join(file)).unwrap().1
}

/// The bundle's reference frames, as onnxruntime was fed them.
fn reference_cases() -> Vec<Case> {
    let reference = bundle_dir().join("reference");
    let mut cases = Vec::new();
    for i in 0.. {
        let dir = reference.join(format!("frame_{i:03}"));
        if !dir.is_dir() {
            break;
        }
        cases.push(Case {
            name: format!("frame_{i:03}"),
            embeddings: read(&dir, "image_embeddings.npy"),
            coords: read(&dir, "point_coords.npy"),
            labels: read(&dir, "point_labels.npy"),
            mask: read(&dir, "mask_input.npy"),
            has_mask: read(&dir, "has_mask_input.npy")[0],
        });
    }
    assert!(
        !cases.is_empty(),
        "no reference frames in {}",
        reference.display()
    );
    cases
}

/// Random prompts on the reference embeddings and on random embeddings.
fn random_cases(e: usize, count: usize, seed: u64) -> Vec<Case> {
    let real = reference_cases();
    let mut rng = Rng(seed);
    let size = 16.0 * e as f32;
    let spread = {
        let v = &real[0].embeddings;
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / v.len() as f32).sqrt()
    };
    (0..count)
        .map(|i| {
            let embeddings = if i % 3 == 2 {
                (0..EMBED * e * e).map(|_| spread * rng.normal()).collect()
            } else {
                real[i % real.len()].embeddings.clone()
            };
            let (coords, labels) = match i % 4 {
                0 | 1 => {
                    let (x0, y0) = (rng.uniform() * size * 0.7, rng.uniform() * size * 0.7);
                    let (w, h) = (
                        8.0 + rng.uniform() * (size - x0 - 8.0),
                        8.0 + rng.uniform() * (size - y0 - 8.0),
                    );
                    (vec![x0, y0, x0 + w, y0 + h], vec![2.0, 3.0])
                }
                2 => {
                    // a foreground point and the official padding point
                    (
                        vec![rng.uniform() * size, rng.uniform() * size, 0.0, 0.0],
                        vec![1.0, -1.0],
                    )
                }
                _ => {
                    let n = 2;
                    let mut c: Vec<f32> = (0..2 * n).map(|_| rng.uniform() * size).collect();
                    c.extend([0.0, 0.0]);
                    (c, vec![1.0, 0.0, -1.0])
                }
            };
            let (mask, has_mask) = if i % 2 == 0 {
                (vec![0.0; 16 * e * e], 0.0)
            } else {
                let m = &real[i % real.len()].mask;
                (m.clone(), 1.0)
            };
            Case {
                name: format!("random_{i}"),
                embeddings,
                coords,
                labels,
                mask,
                has_mask,
            }
        })
        .collect()
}

/// tract's plan of `path` for `n` points.
fn tract_plan(path: &Path, e: usize, n: usize) -> Plan {
    let size = Tensor::from_shape(&[2], &[16.0 * e as f32; 2]).unwrap();
    let spec = GraphSpec {
        inputs: vec![
            InputSpec::shape("image_embeddings", vec![1, EMBED, e, e]),
            InputSpec::shape("point_coords", vec![1, n, 2]),
            InputSpec::shape("point_labels", vec![1, n]),
            InputSpec::shape("mask_input", vec![1, 1, 4 * e, 4 * e]),
            InputSpec::shape("has_mask_input", vec![1]),
            InputSpec::constant("orig_im_size", size),
        ],
        outputs: vec!["iou_predictions".into(), "low_res_masks".into()],
        ..GraphSpec::default()
    };
    graph::load(path, &spec).unwrap()
}

/// Runs cases through tract (one plan per point count).
struct TractDecoder {
    path: PathBuf,
    e: usize,
    sessions: Vec<(usize, Session)>,
}

impl TractDecoder {
    fn new(path: &Path, e: usize) -> TractDecoder {
        TractDecoder {
            path: path.to_path_buf(),
            e,
            sessions: Vec::new(),
        }
    }

    fn inputs(&self, c: &Case) -> Vec<Tensor> {
        let (e, n) = (self.e, c.labels.len());
        vec![
            Tensor::from_shape(&[1, EMBED, e, e], &c.embeddings).unwrap(),
            Tensor::from_shape(&[1, n, 2], &c.coords).unwrap(),
            Tensor::from_shape(&[1, n], &c.labels).unwrap(),
            Tensor::from_shape(&[1, 1, 4 * e, 4 * e], &c.mask).unwrap(),
            Tensor::from_shape(&[1], &[c.has_mask]).unwrap(),
        ]
    }

    fn session(&mut self, n: usize) -> &mut Session {
        if !self.sessions.iter().any(|(k, _)| *k == n) {
            let session = tract_plan(&self.path, self.e, n).session().unwrap();
            self.sessions.push((n, session));
        }
        &mut self.sessions.iter_mut().find(|(k, _)| *k == n).unwrap().1
    }

    fn run(&mut self, c: &Case) -> Out {
        let inputs = self.inputs(c);
        let outs = self.session(c.labels.len()).run(inputs).unwrap();
        let data = |t: &Tensor| {
            t.try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        Out {
            iou: data(&outs[0]),
            low: data(&outs[1]),
        }
    }
}

fn native_run(d: &mut NativeDecoder, c: &Case) -> Out {
    let (m, e) = (d.mask_count(), d.embedding_size());
    let mut out = Out {
        iou: vec![0.0; m],
        low: vec![0.0; m * 16 * e * e],
    };
    d.run(
        &c.embeddings,
        &c.coords,
        &c.labels,
        &c.mask,
        c.has_mask,
        &mut out.low,
        &mut out.iou,
    )
    .unwrap();
    out
}

/// Agreement of two outputs, worst over masks (and over cases).
#[derive(Debug, Clone, Copy)]
struct Agreement {
    /// Lowest IoU of the binary masks (logits > 0); both empty counts 1.
    iou: f64,
    /// Lowest Dice of one mask, over masks with at least 1% of the pixels.
    dice: f64,
    /// Lowest Dice pooled over a call's masks (all their pixels together).
    dice_pooled: f64,
    /// Largest |Δ predicted IoU|.
    score: f32,
    /// Largest |Δ logit|.
    logit: f32,
}

impl Agreement {
    const PERFECT: Agreement = Agreement {
        iou: 1.0,
        dice: 1.0,
        dice_pooled: 1.0,
        score: 0.0,
        logit: 0.0,
    };

    fn worst(self, o: Agreement) -> Agreement {
        Agreement {
            iou: self.iou.min(o.iou),
            dice: self.dice.min(o.dice),
            dice_pooled: self.dice_pooled.min(o.dice_pooled),
            score: self.score.max(o.score),
            logit: self.logit.max(o.logit),
        }
    }
}

fn compare(a: &Out, b: &Out, m: usize) -> Agreement {
    let plane = a.low.len() / m;
    let mut g = Agreement::PERFECT;
    let (mut inter_all, mut size_all) = (0usize, 0usize);
    for k in 0..m {
        let (x, y) = (&a.low[k * plane..][..plane], &b.low[k * plane..][..plane]);
        let (mut inter, mut union, mut na, mut nb) = (0usize, 0usize, 0usize, 0usize);
        for (&p, &q) in x.iter().zip(y) {
            g.logit = g.logit.max((p - q).abs());
            let (p, q) = (p > 0.0, q > 0.0);
            inter += usize::from(p && q);
            union += usize::from(p || q);
            na += usize::from(p);
            nb += usize::from(q);
        }
        g.iou = g.iou.min(if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        });
        if na.max(nb) * 100 >= plane {
            g.dice = g.dice.min(2.0 * inter as f64 / (na + nb) as f64);
        }
        inter_all += inter;
        size_all += na + nb;
        g.score = g.score.max((a.iou[k] - b.iou[k]).abs());
    }
    if size_all > 0 {
        g.dice_pooled = 2.0 * inter_all as f64 / size_all as f64;
    }
    g
}

/// Runs `cases` through both and returns the worst agreement, printing each.
fn agreement(
    label: &str,
    native: &mut NativeDecoder,
    tract: &mut TractDecoder,
    cases: &[Case],
) -> Agreement {
    let m = native.mask_count();
    let mut worst = Agreement::PERFECT;
    for c in cases {
        let a = native_run(native, c);
        let b = tract.run(c);
        assert!(
            a.low.iter().chain(&a.iou).all(|v| v.is_finite()),
            "{label} {}: non-finite output",
            c.name
        );
        let g = compare(&a, &b, m);
        eprintln!(
            "{label} {}: mask IoU {:.4}, Dice {:.4} (pooled {:.4}), |Δ iou_pred| {:.2e}, |Δ logit| {:.2e}",
            c.name, g.iou, g.dice, g.dice_pooled, g.score, g.logit
        );
        worst = worst.worst(g);
    }
    eprintln!("{label} worst: {worst:?}");
    worst
}

#[test]
fn int8_native_matches_tract_on_reference_frames_and_random_prompts() {
    let path = bundle_dir().join("decoder.onnx");
    let mut native = NativeDecoder::from_onnx(&path).unwrap();
    assert!(native.is_int8());
    assert_eq!(native.embed_dim(), EMBED);
    let e = native.embedding_size();
    let mut tract = TractDecoder::new(&path, e);
    let mut cases = reference_cases();
    cases.extend(random_cases(e, 12, 7));
    let g = agreement("int8", &mut native, &mut tract, &cases);
    assert!(g.iou >= 0.96 && g.dice_pooled >= 0.99, "{g:?}");
    assert!(g.score <= 0.01, "{g:?}");
}

#[test]
fn f32_native_matches_tract_on_the_f32_export() {
    let path = f32_export();
    if !path.is_file() {
        eprintln!("skipped: {} is not here (not committed)", path.display());
        return;
    }
    let mut native = NativeDecoder::from_onnx(&path).unwrap();
    assert!(!native.is_int8());
    let e = native.embedding_size();
    let mut tract = TractDecoder::new(&path, e);
    let mut cases = reference_cases();
    cases.extend(random_cases(e, 12, 11));
    let g = agreement("f32", &mut native, &mut tract, &cases);
    assert!(g.iou >= 0.995, "{g:?}");
    assert!(g.score <= 1e-3, "{g:?}");
}

/// `models/vit-b-random/decoder.onnx`: SAM ViT-B's decoder (E = 64) with
/// random weights, not committed (`cd models/recipe && ../../.venv/bin/python
/// -m sammix_recipe.export_vit_b --out ../vit-b-random --skip-encoder`).
fn vit_b_f32() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/vit-b-random/decoder.onnx")
}

/// Prompts on random embeddings of grid `e`: boxes, points with the padding
/// point, with and without a dense prompt (a disc of ±8 logits).
fn synthetic_cases(e: usize, count: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let size = 16.0 * e as f32;
    let n = 4 * e;
    let disc: Vec<f32> = (0..n * n)
        .map(|i| {
            let (y, x) = ((i / n) as f32 + 0.5, (i % n) as f32 + 0.5);
            let r = (x - 0.45 * n as f32).powi(2) + (y - 0.55 * n as f32).powi(2);
            if r < (0.3 * n as f32).powi(2) {
                8.0
            } else {
                -8.0
            }
        })
        .collect();
    (0..count)
        .map(|i| {
            let embeddings = (0..EMBED * e * e).map(|_| 0.5 * rng.normal()).collect();
            let (x0, y0) = (rng.uniform() * size * 0.6, rng.uniform() * size * 0.6);
            let (x1, y1) = (
                x0 + 16.0 + rng.uniform() * size * 0.3,
                y0 + 16.0 + rng.uniform() * size * 0.3,
            );
            let (coords, labels) = if i % 2 == 0 {
                (vec![x0, y0, x1, y1], vec![2.0, 3.0])
            } else {
                (vec![x0, y0, x1, y1, 0.0, 0.0], vec![1.0, 0.0, -1.0])
            };
            let (mask, has_mask) = if i % 3 == 1 {
                (disc.clone(), 1.0)
            } else {
                (vec![0.0; n * n], 0.0)
            };
            Case {
                name: format!("synthetic_{i}"),
                embeddings,
                coords,
                labels,
                mask,
                has_mask,
            }
        })
        .collect()
}

/// The ViT-B-size export loads as it is (its LayerNorm parameters are
/// `Identity` aliases of one initializer) and computes what tract computes.
#[test]
fn f32_native_matches_tract_on_the_vit_b_export() {
    let path = vit_b_f32();
    if !path.is_file() {
        eprintln!("skipped: {} is not here (not committed)", path.display());
        return;
    }
    let mut native = NativeDecoder::from_onnx(&path).unwrap();
    assert!(!native.is_int8());
    let e = native.embedding_size();
    assert_eq!(e, 64);
    let mut tract = TractDecoder::new(&path, e);
    let cases = synthetic_cases(e, 4, 17);
    let g = agreement("vit-b f32", &mut native, &mut tract, &cases);
    assert!(g.iou >= 0.995, "{g:?}");
    assert!(g.score <= 1e-3, "{g:?}");
}

#[test]
fn dequantized_native_is_close_to_the_int8_graph() {
    let path = bundle_dir().join("decoder.onnx");
    let options = Options {
        precision: Precision::F32,
        ..Options::default()
    };
    let mut native = NativeDecoder::from_onnx_with(&path, options).unwrap();
    assert!(!native.is_int8());
    let e = native.embedding_size();
    let mut tract = TractDecoder::new(&path, e);
    let mut cases = reference_cases();
    cases.extend(random_cases(e, 8, 13));
    let g = agreement(
        "dequantized f32 vs int8 graph",
        &mut native,
        &mut tract,
        &cases,
    );
    if f32_export().is_file() {
        let mut f32_native = NativeDecoder::from_onnx(f32_export()).unwrap();
        agreement(
            "f32 export, native f32 vs int8 graph",
            &mut f32_native,
            &mut tract,
            &cases,
        );
    }
    assert!(g.dice_pooled >= 0.98 && g.dice >= 0.95, "{g:?}");
}

#[test]
fn wrong_input_sizes_are_errors() {
    let path = bundle_dir().join("decoder.onnx");
    let mut d = NativeDecoder::from_onnx(&path).unwrap();
    let (e, m) = (d.embedding_size(), d.mask_count());
    let emb = vec![0.0; EMBED * e * e];
    let mask = vec![0.0; 16 * e * e];
    let (mut low, mut iou) = (vec![0.0; m * 16 * e * e], vec![0.0; m]);
    let coords = [1.0, 2.0, 3.0, 4.0];
    let labels = [2.0, 3.0];
    let err = d
        .run(&emb[1..], &coords, &labels, &mask, 1.0, &mut low, &mut iou)
        .unwrap_err();
    assert!(err.to_string().contains("image_embeddings"), "{err}");
    let err = d
        .run(&emb, &coords[..3], &labels, &mask, 1.0, &mut low, &mut iou)
        .unwrap_err();
    assert!(err.to_string().contains("point_coords"), "{err}");
    let err = d
        .run(&emb, &coords, &labels, &mask, 1.0, &mut low[1..], &mut iou)
        .unwrap_err();
    assert!(err.to_string().contains("low_res_masks"), "{err}");
    let many = vec![1.0; d.max_points() + 1];
    let err = d
        .run(
            &emb,
            &vec![0.0; 2 * many.len()],
            &many,
            &mask,
            1.0,
            &mut low,
            &mut iou,
        )
        .unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    // non-finite inputs give non-finite outputs, not a panic
    let mut bad = emb.clone();
    bad[0] = f32::NAN;
    d.run(&bad, &coords, &labels, &mask, 1.0, &mut low, &mut iou)
        .unwrap();
    // no points at all is a valid prompt for the graph's arithmetic
    d.run(&emb, &[], &[], &mask, 0.0, &mut low, &mut iou)
        .unwrap();
}

/// Writes the bundle's decoder with `edit` applied to a temporary file.
fn edited_decoder(tag: &str, edit: impl FnOnce(&mut tract_onnx::pb::GraphProto)) -> PathBuf {
    use prost::Message;
    use tract_onnx::prelude::Framework;
    let path = bundle_dir().join("decoder.onnx");
    let mut model = tract_onnx::onnx().proto_model_for_path(&path).unwrap();
    edit(model.graph.as_mut().unwrap());
    let dir = std::env::temp_dir().join(format!("sammix-native-decoder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{tag}.onnx"));
    std::fs::write(&out, model.encode_to_vec()).unwrap();
    out
}

#[test]
fn a_missing_weight_is_named() {
    let bias = "mask_decoder.transformer.layers.1.mlp.lin1.bias";
    let path = edited_decoder("missing-bias", |g| g.initializer.retain(|t| t.name != bias));
    let err = NativeDecoder::from_onnx(&path).unwrap_err();
    assert!(
        matches!(err, DecoderError::MissingWeight { ref name, .. } if name == bias),
        "{err}"
    );
    assert!(err.to_string().contains(bias), "{err}");

    let pe = "model.prompt_encoder.point_embeddings.2.weight";
    let path = edited_decoder("missing-point-embedding", |g| {
        g.initializer.retain(|t| t.name != pe)
    });
    let err = NativeDecoder::from_onnx(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("prompt_encoder.point_embeddings.2.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("[256]"), "{err}");
}

#[test]
fn a_mis_shaped_weight_is_named() {
    // The anonymous int8 weight of layers.0.mlp.lin1 ([256, 2048]) with its
    // dims swapped: same byte count, wrong shape.
    let path = bundle_dir().join("decoder.onnx");
    let init = {
        use tract_onnx::prelude::Framework;
        let model = tract_onnx::onnx().proto_model_for_path(&path).unwrap();
        let g = model.graph.unwrap();
        g.initializer
            .iter()
            .find(|t| t.dims == [256, 2048] && t.data_type == 3)
            .map(|t| t.name.clone())
            .unwrap()
    };
    let path = edited_decoder("swapped-dims", |g| {
        let t = g.initializer.iter_mut().find(|t| t.name == init).unwrap();
        t.dims = vec![2048, 256];
    });
    let err = NativeDecoder::from_onnx(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, DecoderError::WeightShape { ref name, .. } if name == "mask_decoder.transformer.layers.0.mlp.lin1.weight"),
        "{text}"
    );
    assert!(
        text.contains(&init) && text.contains("[256, 2048]"),
        "{text}"
    );

    // A bias of the wrong length.
    let bias = "mask_decoder.iou_prediction_head.layers.2.bias";
    let path = edited_decoder("short-bias", |g| {
        let t = g.initializer.iter_mut().find(|t| t.name == bias).unwrap();
        t.dims = vec![2];
        t.raw_data.truncate(8);
    });
    let err = NativeDecoder::from_onnx(&path).unwrap_err();
    assert!(err.to_string().contains("iou_prediction_head"), "{err}");
}

/// One-thread timing, native vs tract, on the bundle's decoder. Run with
/// `cargo test --release --test native_decoder -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_native_vs_tract() {
    let path = bundle_dir().join("decoder.onnx");
    let cases = reference_cases();
    let case = &cases[0];
    let reps = 50;
    for (label, precision, graph) in [
        ("int8 graph, native int8", Precision::AsGraph, path.clone()),
        (
            "int8 graph, native dequantized f32",
            Precision::F32,
            path.clone(),
        ),
        ("f32 graph, native f32", Precision::AsGraph, f32_export()),
    ] {
        if !graph.is_file() {
            continue;
        }
        let options = Options {
            precision,
            ..Options::default()
        };
        let mut native = NativeDecoder::from_onnx_with(&graph, options).unwrap();
        let mut tract = TractDecoder::new(&graph, native.embedding_size());
        for _ in 0..3 {
            native_run(&mut native, case);
            tract.run(case);
        }
        let time = |f: &mut dyn FnMut()| {
            let mut v: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v[reps / 2]
        };
        let n = time(&mut || {
            native_run(&mut native, case);
        });
        let t = time(&mut || {
            tract.run(case);
        });
        eprintln!(
            "{label} ({}): native {n:.2} ms, tract {t:.2} ms (median of {reps})",
            graph.display()
        );
    }
}

/// One-thread timing of the native decoder on the ViT-B-size graphs (f32 and
/// int8), for profiling: `cargo test --release --test native_decoder
/// timing_native_vit_b -- --ignored --nocapture` (`SAMMIX_REPS` calls each;
/// the int8 graph also as [`Precision::F32`], its weights dequantized).
#[test]
#[ignore]
fn timing_native_vit_b() {
    let reps: usize = std::env::var("SAMMIX_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let int8 = vit_b_f32().with_file_name("int8").join("decoder.onnx");
    let dequantized = Options {
        precision: Precision::F32,
        ..Options::default()
    };
    for (label, graph, options) in [
        ("f32", vit_b_f32(), Options::default()),
        ("int8", int8.clone(), Options::default()),
        ("int8 graph dequantized", int8, dequantized),
    ] {
        if !graph.is_file() {
            eprintln!("skipped: {} is not here", graph.display());
            continue;
        }
        let mut native = NativeDecoder::from_onnx_with(&graph, options).unwrap();
        let case = &synthetic_cases(native.embedding_size(), 1, 5)[0];
        native_run(&mut native, case);
        let mut v: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                native_run(&mut native, case);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        eprintln!(
            "vit-b {label}: native median {:.2} ms over {reps} calls ({})",
            v[reps / 2],
            native.kernels().name()
        );
    }
}
