//! Loading a bundle's three graphs against the contract.
//!
//! | graph | inputs (fixed here) | outputs used |
//! |---|---|---|
//! | classifier | `image` 1×C×S×S f32 | `logits` 1×1, `cam` 1×1×h×w |
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

use crate::bundle::{Bundle, GraphRole, Manifest};
use tract_onnx::prelude::tensor1;

use crate::graph::{self, DatumType, GraphSpec, InputSpec, OutputInfo, Plan};

use super::PipelineError;

/// SAM's prompt embedding dimension: channels of `image_embeddings`.
pub const EMBED_DIM: usize = 256;

/// The three plans of a bundle, with the sizes they were checked against.
#[derive(Debug, Clone)]
pub struct Graphs {
    /// Classifier: `image` → `logits`, `cam`.
    pub classifier: Plan,
    /// Image encoder: `image` → `image_embeddings`.
    pub encoder: Plan,
    /// Mask decoder: prompts → `iou_predictions`, `low_res_masks`.
    pub decoder: Plan,
    /// CAM height and width.
    pub cam_size: (usize, usize),
    /// Number of masks the decoder returns (T, 4 for SAM).
    pub mask_count: usize,
}

/// Loads and checks the bundle's graphs.
pub fn load_graphs(bundle: &Bundle) -> Result<Graphs, PipelineError> {
    let m = bundle.manifest();
    let s = m.input.size as usize;
    let c = m.input.channels as usize;
    let e = m.input.embedding_size as usize;
    let image = || InputSpec::shape("image", vec![1, c, s, s]);

    let classifier_spec = GraphSpec {
        inputs: vec![image()],
        outputs: vec!["logits".into(), "cam".into()],
        ..GraphSpec::default()
    };
    let classifier = graph::load(bundle.graph_path(GraphRole::Classifier), &classifier_spec)?;
    check(&classifier, 0, &[Some(1), Some(1)])?;
    let cam = check(&classifier, 1, &[Some(1), Some(1), None, None])?;
    let cam_size = (cam[2], cam[3]);

    let encoder_spec = GraphSpec {
        inputs: vec![image()],
        outputs: vec!["image_embeddings".into()],
        ..GraphSpec::default()
    };
    let encoder = graph::load(bundle.graph_path(GraphRole::Encoder), &encoder_spec)?;
    check(&encoder, 0, &[Some(1), Some(EMBED_DIM), Some(e), Some(e)])?;

    let decoder = graph::load(bundle.graph_path(GraphRole::Decoder), &decoder_spec(m))?;
    let iou = check(&decoder, 0, &[Some(1), None])?;
    let mask_count = iou[1];
    check(
        &decoder,
        1,
        &[Some(1), Some(mask_count), Some(4 * e), Some(4 * e)],
    )?;
    if let Some(&t) = m
        .decoder
        .mask_tokens
        .iter()
        .find(|&&t| t as usize >= mask_count)
    {
        return Err(PipelineError::Contract {
            path: decoder.path().to_path_buf(),
            output: "iou_predictions".into(),
            expected: format!("more than {t} masks (sammix.toml decoder.mask_tokens)"),
            got: format!("{mask_count} masks"),
        });
    }
    Ok(Graphs {
        classifier,
        encoder,
        decoder,
        cam_size,
        mask_count,
    })
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
