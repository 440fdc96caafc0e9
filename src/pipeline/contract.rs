//! Loading a bundle's three graphs against the contract.
//!
//! | graph | inputs (fixed here) | outputs used |
//! |---|---|---|
//! | classifier | `image` 1×C×S×S f32, or `image_embeddings` 1×256×E×E f32 (`graphs.classifier.input`) | `logits` 1×1, `cam` 1×1×h×w |
//! | encoder | `image` 1×C×S×S f32 | `image_embeddings` 1×256×E×E |
//! | decoder | `image_embeddings` 1×256×E×E, `point_coords` 1×2×2, `point_labels` 1×2, `mask_input` 1×1×4E×4E, `has_mask_input` 1; `orig_im_size` pinned to (S, S) | `iou_predictions` 1×T, `low_res_masks` 1×T×4E×4E |
//!
//! The decoder's full-size `masks` output is pruned before optimization: the
//! runtime resizes only the chosen low-resolution mask, straight to the
//! frame size, which is both faster and right for any aspect ratio (the
//! official export bakes a crop of its dummy `orig_im_size` into `masks`).
//! A wrong input name, rank or size fails in [`graph::load`] with the file
//! and the input named; an operator tract does not know fails there too; an
//! output of the wrong shape fails here with [`PipelineError::Contract`].
//!
//! E is the graphs' (SAM ViT-B 1024 → 64, LiteMedSAM 256 → 64, a tiny ViT
//! 256 → 16), not a ratio of S: the manifest's `input.embedding_size` must
//! say it. A graph whose E×E (`image_embeddings`) or 4E×4E (`mask_input`)
//! grid differs from the manifest's, and nothing else, fails with
//! [`PipelineError::EmbeddingSize`] (the native decoder with
//! [`PipelineError::DecoderMismatch`]), naming `input.embedding_size`, the
//! file, the graph's shape and the manifest's.
//!
//! The decoder is loaded by the engine that runs it. The native decoder
//! ([`DecoderKind::Native`], the default) reads its weights from the same
//! file and checks its own inputs and outputs (a [`PipelineError::Decoder`]
//! names the file and the SAM parameter at fault); what it reads must fit
//! the manifest (E, S, the mask tokens: [`PipelineError::DecoderMismatch`]).
//! tract's decoder plan is then not built at all: on the tiny bundle it
//! costs ~0.3-0.45 s of start-up (tract's load and optimization; the native
//! decoder reads its weights in ~10 ms) and ~19 MB of resident memory
//! (`/usr/bin/time` on `sammix segment` of a gated frame, release build, a
//! 2-core VM: 0.27-0.41 s and 41 MB native, 0.59-0.88 s and 52 MB tract).
//! It is built when the tract decoder is asked for, by
//! [`DecoderKind::Tract`] or [`super::Pipeline::set_decoder`] (`sammix
//! bench` and `sammix info` load both).

use std::path::Path;

use crate::bundle::{Bundle, ClassifierInput, GraphRole, Manifest};
use crate::decoder::NativeDecoder;
use tract_onnx::prelude::tensor1;

use crate::graph::{self, DatumType, GraphSpec, InputSpec, OutputInfo, Plan};

use super::{DecoderKind, PipelineError};

/// SAM's prompt embedding dimension: channels of `image_embeddings`.
pub const EMBED_DIM: usize = 256;

/// The plans of a bundle, with the sizes they were checked against.
#[derive(Debug, Clone)]
pub struct Graphs {
    /// Classifier: `image` (or `image_embeddings`, as the manifest's
    /// `graphs.classifier.input` says) → `logits`, `cam`.
    pub classifier: Plan,
    /// Image encoder: `image` → `image_embeddings`.
    pub encoder: Plan,
    /// tract's plan of the mask decoder (prompts → `iou_predictions`,
    /// `low_res_masks`): loaded only when tract runs the decoder
    /// ([`DecoderKind::Tract`], or [`super::Pipeline::set_decoder`]).
    pub decoder: Option<Plan>,
    /// CAM height and width.
    pub cam_size: (usize, usize),
    /// Number of masks the decoder returns (T, 4 for SAM).
    pub mask_count: usize,
}

/// Loads and checks the bundle's classifier and encoder, and its decoder
/// for `kind`: tract's plan (in [`Graphs::decoder`]) or the native decoder
/// (returned beside). Only the decoder that will run is loaded.
pub fn load_graphs(
    bundle: &Bundle,
    kind: DecoderKind,
) -> Result<(Graphs, Option<NativeDecoder>), PipelineError> {
    let m = bundle.manifest();
    let s = m.input.size as usize;
    let c = m.input.channels as usize;
    let e = m.input.embedding_size as usize;
    let image = || InputSpec::shape("image", vec![1, c, s, s]);

    let classifier_input = match m.graphs.classifier_input {
        ClassifierInput::Image => image(),
        ClassifierInput::ImageEmbeddings => {
            InputSpec::shape("image_embeddings", vec![1, EMBED_DIM, e, e])
        }
    };
    let classifier_spec = GraphSpec {
        inputs: vec![classifier_input],
        outputs: vec!["logits".into(), "cam".into()],
        ..GraphSpec::default()
    };
    let classifier = graph::load(bundle.graph_path(GraphRole::Classifier), &classifier_spec)
        .map_err(|err| name_embedding_size(err, m))?;
    check(&classifier, 0, &[Some(1), Some(1)])?;
    let cam = check(&classifier, 1, &[Some(1), Some(1), None, None])?;
    let cam_size = (cam[2], cam[3]);

    let encoder_spec = GraphSpec {
        inputs: vec![image()],
        outputs: vec!["image_embeddings".into()],
        ..GraphSpec::default()
    };
    let encoder = graph::load(bundle.graph_path(GraphRole::Encoder), &encoder_spec)?;
    check_embeddings(&encoder, 0, m)?;

    let path = bundle.graph_path(GraphRole::Decoder);
    let (decoder, native, mask_count) = match kind {
        DecoderKind::Tract => {
            let (plan, masks) = load_tract_decoder(&path, m)?;
            (Some(plan), None, masks)
        }
        DecoderKind::Native => {
            let native = load_native_decoder(&path, m)?;
            let masks = native.mask_count();
            (None, Some(native), masks)
        }
    };
    let graphs = Graphs {
        classifier,
        encoder,
        decoder,
        cam_size,
        mask_count,
    };
    Ok((graphs, native))
}

/// tract's plan of `decoder.onnx`, checked against the contract, and the
/// number of masks it returns.
pub(crate) fn load_tract_decoder(
    path: &Path,
    m: &Manifest,
) -> Result<(Plan, usize), PipelineError> {
    let e = m.input.embedding_size as usize;
    let decoder = graph::load(path, &decoder_spec(m)).map_err(|err| name_embedding_size(err, m))?;
    let iou = check(&decoder, 0, &[Some(1), None])?;
    let mask_count = iou[1];
    check(
        &decoder,
        1,
        &[Some(1), Some(mask_count), Some(4 * e), Some(4 * e)],
    )?;
    check_mask_tokens(path, m, mask_count)?;
    Ok((decoder, mask_count))
}

/// The native decoder of `decoder.onnx`, checked against the manifest: the
/// embedding channels and size, the input size point coordinates refer to,
/// the mask tokens the manifest picks from.
pub(crate) fn load_native_decoder(
    path: &Path,
    m: &Manifest,
) -> Result<NativeDecoder, PipelineError> {
    let native = NativeDecoder::from_onnx(path).map_err(|error| PipelineError::Decoder {
        path: path.to_path_buf(),
        error: Box::new(error),
    })?;
    let mismatch = |what, field, expected: String, got: String| {
        Err(PipelineError::DecoderMismatch {
            path: path.to_path_buf(),
            what,
            field,
            expected,
            got,
        })
    };
    let e = m.input.embedding_size as usize;
    if native.embed_dim() != EMBED_DIM {
        let got = native.embed_dim().to_string();
        return mismatch(
            "embedding channels",
            "the contract",
            EMBED_DIM.to_string(),
            got,
        );
    }
    if native.embedding_size() != e {
        let got = native.embedding_size().to_string();
        return mismatch("embedding size", "input.embedding_size", e.to_string(), got);
    }
    let s = m.input.size as f32;
    if native.input_size() != s {
        let got = native.input_size().to_string();
        return mismatch("point normalization size", "input.size", s.to_string(), got);
    }
    check_mask_tokens(path, m, native.mask_count())?;
    Ok(native)
}

/// Every mask token the manifest picks from must be one the decoder returns.
fn check_mask_tokens(path: &Path, m: &Manifest, mask_count: usize) -> Result<(), PipelineError> {
    if let Some(&t) = m
        .decoder
        .mask_tokens
        .iter()
        .find(|&&t| t as usize >= mask_count)
    {
        return Err(PipelineError::Contract {
            path: path.to_path_buf(),
            output: "iou_predictions".into(),
            expected: format!("more than {t} masks (sammix.toml decoder.mask_tokens)"),
            got: format!("{mask_count} masks"),
        });
    }
    Ok(())
}

/// The decoder spec: one box (two corner points), dense prompt on.
pub fn decoder_spec(m: &Manifest) -> GraphSpec {
    let s = m.input.size as usize;
    let e = m.input.embedding_size as usize;
    let size = tensor1(&[s as f32, s as f32]);
    GraphSpec {
        inputs: vec![
            InputSpec::shape("image_embeddings", vec![1, EMBED_DIM, e, e]),
            InputSpec::shape("point_coords", vec![1, 2, 2]),
            InputSpec::shape("point_labels", vec![1, 2]),
            InputSpec::shape("mask_input", vec![1, 1, 4 * e, 4 * e]),
            InputSpec::shape("has_mask_input", vec![1]),
            InputSpec::constant("orig_im_size", size),
        ],
        outputs: vec!["iou_predictions".into(), "low_res_masks".into()],
        ..GraphSpec::default()
    }
}

/// Checks output `ix` is `image_embeddings`-like: f32 1×256×E×E with the
/// manifest's E. One that is so but for its E×E is an
/// [`PipelineError::EmbeddingSize`], naming the manifest field.
fn check_embeddings(plan: &Plan, ix: usize, m: &Manifest) -> Result<(), PipelineError> {
    let e = m.input.embedding_size as usize;
    let expected = [Some(1), Some(EMBED_DIM), Some(e), Some(e)];
    let out = &plan.outputs()[ix];
    if let Some(shape) = out.shape.as_deref() {
        let dims: Vec<Option<usize>> = shape.iter().map(|&d| Some(d)).collect();
        let want = [1, EMBED_DIM, e, e];
        if out.datum_type == DatumType::F32 && grid_differs(&dims, &want) {
            return Err(PipelineError::EmbeddingSize {
                path: plan.path().to_path_buf(),
                tensor: format!("output {:?}", out.name),
                embedding_size: m.input.embedding_size,
                expected: dims_text(&want.map(Some)),
                got: dims_text(&dims),
            });
        }
    }
    check(plan, ix, &expected).map(drop)
}

/// A graph input refused for its shape that differs from the spec only in
/// its last two (grid) dimensions, when the spec took them from E
/// (`image_embeddings` E×E, `mask_input` 4E×4E): an
/// [`PipelineError::EmbeddingSize`] naming `input.embedding_size`. Any
/// other error is passed on.
pub(crate) fn name_embedding_size(err: graph::GraphError, m: &Manifest) -> PipelineError {
    if let graph::GraphError::ShapeMismatch {
        path,
        name,
        declared_dims,
        given,
        ..
    } = &err
    {
        let grid_input = name == "image_embeddings" || name == "mask_input";
        if grid_input && grid_differs(declared_dims, given) {
            return PipelineError::EmbeddingSize {
                path: path.clone(),
                tensor: format!("input {name:?}"),
                embedding_size: m.input.embedding_size,
                expected: dims_text(&given.iter().map(|&d| Some(d)).collect::<Vec<_>>()),
                got: dims_text(declared_dims),
            };
        }
    }
    err.into()
}

/// Whether `dims` (a graph's, `None`: not a number) has `want`'s rank and
/// leading dimensions, and differs from it in the last two.
fn grid_differs(dims: &[Option<usize>], want: &[usize]) -> bool {
    let r = want.len();
    if r < 2 || dims.len() != r {
        return false;
    }
    let fits = |(d, w): (&Option<usize>, &usize)| d.is_none_or(|d| d == *w);
    dims[..r - 2].iter().zip(&want[..r - 2]).all(fits)
        && !dims[r - 2..].iter().zip(&want[r - 2..]).all(fits)
}

/// `1×256×64×64`, `?` for a dimension that is not a number.
fn dims_text(dims: &[Option<usize>]) -> String {
    dims.iter()
        .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join("×")
}

/// Checks output `ix` is f32 with the expected shape (`None`: any size
/// above 0) and returns its shape.
fn check(plan: &Plan, ix: usize, expected: &[Option<usize>]) -> Result<Vec<usize>, PipelineError> {
    let out: &OutputInfo = &plan.outputs()[ix];
    let want = expected
        .iter()
        .map(|d| d.map_or("n".to_string(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join("×");
    let err = |got: String| PipelineError::Contract {
        path: plan.path().to_path_buf(),
        output: out.name.clone(),
        expected: format!("f32 {want}"),
        got,
    };
    let Some(shape) = &out.shape else {
        return Err(err("of a shape tract cannot make concrete".into()));
    };
    let shape_text = shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×");
    if out.datum_type != DatumType::F32 {
        return Err(err(format!("{:?} {shape_text}", out.datum_type)));
    }
    let fits = shape.len() == expected.len()
        && shape
            .iter()
            .zip(expected)
            .all(|(&d, w)| d > 0 && w.is_none_or(|w| w == d));
    if !fits {
        return Err(err(format!("f32 {shape_text}")));
    }
    Ok(shape.clone())
}
