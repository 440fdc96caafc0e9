//! `Pipeline::new` against the graph contract (`src/pipeline/contract.rs`):
//! the real bundle loads, with either decoder; then one test per way a graph
//! can break the contract (with the tract decoder: the hand-built decoders
//! below meet the contract's interface but are not SAM, so the native
//! decoder refuses every one of them, which the native tests check), each
//! on a bundle built in a temporary folder where one graph is replaced by a
//! tiny hand-built ONNX model (or by another of the bundle's graphs:
//! `tests/common`). The bundle itself is valid (its manifest carries the new
//! sha256), so `Bundle::open` succeeds and the failure comes from loading the
//! graphs. Each failure is checked by its error variant and by its message,
//! which must name the graph file and the problem.

#[macro_use]
mod common;

use common::*;
use sammix::bundle::{Bundle, GraphRole};
use sammix::decoder::DecoderError;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::graph::GraphError;
use sammix::pipeline::{DecoderKind, Outcome, Pipeline, PipelineError, EMBED_DIM};

// ---------------------------------------------------------------------------
// The real bundle

#[test]
fn the_real_bundle_meets_the_contract() {
    let bundle = Bundle::open(real_bundle_dir()).unwrap_or_else(|e| panic!("{e}"));
    // The default: the native decoder, and no tract plan of the decoder.
    let mut pipeline = Pipeline::new(&bundle).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pipeline.decoder(), DecoderKind::Native);
    assert!(pipeline.native_decoder().is_some());
    let graphs = pipeline.graphs();
    assert_eq!(graphs.cam_size, (16, 16));
    assert_eq!(graphs.mask_count, 4);
    assert!(graphs.decoder.is_none(), "tract's decoder plan was built");
    // Switching loads the other one (and both must agree on the masks).
    pipeline
        .set_decoder(DecoderKind::Tract)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pipeline.decoder(), DecoderKind::Tract);
    assert!(pipeline.graphs().decoder.is_some());

    // tract only: no native decoder until asked for.
    let pipeline =
        Pipeline::with_decoder(&bundle, DecoderKind::Tract).unwrap_or_else(|e| panic!("{e}"));
    assert!(pipeline.native_decoder().is_none());
    assert_eq!(pipeline.graphs().mask_count, 4);
}

/// The fixture's own check: hand-built graphs that meet the contract build
/// a pipeline, so each failure below is due to the one thing it changes.
#[test]
fn hand_built_graphs_meet_the_contract() {
    let b = TestBundle::new("hand-built");
    let z = b.sizes();
    b.replace(
        GraphRole::Classifier,
        &classifier_named(z, "image").encode(),
    )
    .replace(GraphRole::Encoder, &encoder(z, EMBED_DIM as i64).encode())
    .replace(GraphRole::Decoder, &decoder(z, 4, 4 * z.e).encode());
    let bundle = Bundle::open(&b.dir).unwrap_or_else(|e| panic!("{e}"));
    let pipeline =
        Pipeline::with_decoder(&bundle, DecoderKind::Tract).unwrap_or_else(|e| panic!("{e}"));
    let e = z.e as usize;
    assert_eq!(pipeline.graphs().cam_size, (e, e));
    assert_eq!(pipeline.graphs().mask_count, 4);
}

// ---------------------------------------------------------------------------
// Classifier inputs

#[test]
fn classifier_input_with_another_name() {
    let b = TestBundle::new("input-name");
    let z = b.sizes();
    b.replace(
        GraphRole::Classifier,
        &classifier_named(z, "input").encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownInput { name, available, .. })
            if name == "image" && available == &["input"],
        [&path, "no input \"image\"", "its inputs: [\"input\"]"]
    );
}

#[test]
fn classifier_input_of_rank_3() {
    let b = TestBundle::new("input-rank");
    let z = b.sizes();
    let g = Onnx::default()
        .input("image", &[1, z.s, z.s])
        .ints("gray_shape", &[1, 1, z.s, z.s])
        .node("Reshape", &["image", "gray_shape"], "gray", vec![]);
    b.replace(
        GraphRole::Classifier,
        &add_cam(add_logits(g), z, "AveragePool").encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    let given = format!("{:?}", z.image());
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::ShapeMismatch { name, .. }) if name == "image",
        [&path, "input \"image\"", &format!("got shape {given}")]
    );
}

// ---------------------------------------------------------------------------
// Classifier outputs

#[test]
fn classifier_without_cam() {
    let b = TestBundle::new("no-cam");
    let z = b.sizes();
    b.replace(
        GraphRole::Classifier,
        &add_logits(gray_image(z, "image")).encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownOutput { name, available, .. })
            if name == "cam" && available == &["logits"],
        [&path, "no output \"cam\"", "its outputs: [\"logits\"]"]
    );
}

#[test]
fn classifier_cam_of_rank_3() {
    let b = TestBundle::new("cam-rank");
    let z = b.sizes();
    let g = add_logits(gray_image(z, "image"))
        .ints("cam_shape", &[1, z.e, z.e])
        .node("AveragePool", &["gray"], "cam4", pool_to_cam(z))
        .node("Reshape", &["cam4", "cam_shape"], "cam", vec![])
        .output("cam");
    b.replace(GraphRole::Classifier, &g.encode());
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Contract { output, .. } if output == "cam",
        [
            &path,
            "output \"cam\"",
            &format!("is f32 1×{e}×{e}", e = z.e),
            "the contract expects f32 1×1×n×n",
        ]
    );
}

#[test]
fn classifier_logits_of_two_classes() {
    let b = TestBundle::new("logits-1x2");
    let z = b.sizes();
    let g = gray_image(z, "image")
        .ints("logit_shape", &[1, 1])
        .node("GlobalAveragePool", &["gray"], "pooled", vec![])
        .node("Reshape", &["pooled", "logit_shape"], "logit", vec![])
        .node(
            "Concat",
            &["logit", "logit"],
            "logits",
            vec![int("axis", 1)],
        )
        .output("logits");
    b.replace(
        GraphRole::Classifier,
        &add_cam(g, z, "AveragePool").encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Contract { output, .. } if output == "logits",
        [
            &path,
            "output \"logits\"",
            "is f32 1×2",
            "the contract expects f32 1×1",
        ]
    );
}

#[test]
fn classifier_logits_of_integer_type() {
    let b = TestBundle::new("logits-int");
    let z = b.sizes();
    let g = gray_image(z, "image")
        .ints("logit_shape", &[1, 1])
        .node("GlobalAveragePool", &["gray"], "pooled", vec![])
        .node("Reshape", &["pooled", "logit_shape"], "logit", vec![])
        .node("Cast", &["logit"], "logits", vec![int("to", INT64.into())])
        .output("logits");
    b.replace(
        GraphRole::Classifier,
        &add_cam(g, z, "AveragePool").encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    // tract reports the int64 output as its TDim (dimension) type.
    assert_err!(
        b.pipeline_err(),
        PipelineError::Contract { output, got, .. } if output == "logits" && !got.starts_with("f32"),
        [&path, "output \"logits\"", "the contract expects f32 1×1"]
    );
}

// ---------------------------------------------------------------------------
// Encoder and decoder

#[test]
fn encoder_embeddings_of_128_channels() {
    let b = TestBundle::new("embed-128");
    let z = b.sizes();
    b.replace(GraphRole::Encoder, &encoder(z, 128).encode());
    let path = b.graph_path(GraphRole::Encoder).display().to_string();
    let e = z.e;
    assert_err!(
        b.pipeline_err(),
        PipelineError::Contract { path: p, output, .. }
            if output == "image_embeddings" && p.ends_with("encoder.onnx"),
        [
            &path,
            "output \"image_embeddings\"",
            &format!("is f32 1×128×{e}×{e}"),
            &format!("the contract expects f32 1×256×{e}×{e}"),
        ]
    );
}

#[test]
fn decoder_swapped_for_the_classifier() {
    let b = TestBundle::new("decoder-swap");
    b.swap(GraphRole::Decoder, GraphRole::Classifier);
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert!(path.ends_with("decoder.onnx"));
    // The classifier has no `iou_predictions` output: that is checked
    // before the inputs.
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownOutput { name, available, .. })
            if name == "iou_predictions" && available.iter().any(|a| a == "cam"),
        [&path, "no output \"iou_predictions\"", "\"logits\"", "\"cam\""]
    );
}

#[test]
fn decoder_swapped_for_the_encoder() {
    let b = TestBundle::new("decoder-swap-encoder");
    b.swap(GraphRole::Decoder, GraphRole::Encoder);
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownOutput { name, .. }) if name == "iou_predictions",
        [&path, "no output \"iou_predictions\"", "\"image_embeddings\""]
    );
}

/// A decoder that meets the contract but for a missing input: the input is
/// named.
#[test]
fn decoder_without_image_embeddings() {
    let b = TestBundle::new("decoder-inputs");
    let z = b.sizes();
    let mut g = decoder(z, 4, 4 * z.e);
    g.graph.input.retain(|i| i.name != "image_embeddings");
    b.replace(GraphRole::Decoder, &g.encode());
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownInput { name, available, .. })
            if name == "image_embeddings" && available.len() == 5,
        [
            &path,
            "no input \"image_embeddings\"",
            "its inputs: [\"point_coords\", \"point_labels\", \"mask_input\", \"has_mask_input\", \"orig_im_size\"]",
        ]
    );
}

/// The manifest picks among mask tokens 1, 2, 3: a decoder of 3 masks
/// (0..=2) has no token 3.
#[test]
fn decoder_with_fewer_masks_than_the_manifest_picks_from() {
    let b = TestBundle::new("decoder-3-masks");
    let z = b.sizes();
    let top = *b.manifest.decoder.mask_tokens.iter().max().unwrap();
    b.replace(
        GraphRole::Decoder,
        &decoder(z, top.into(), 4 * z.e).encode(),
    );
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Contract { output, .. } if output == "iou_predictions",
        [
            &path,
            "output \"iou_predictions\"",
            &format!("is {top} masks"),
            &format!("expects more than {top} masks (sammix.toml decoder.mask_tokens)"),
        ]
    );
}

#[test]
fn decoder_low_res_masks_of_another_size() {
    let b = TestBundle::new("decoder-mask-size");
    let z = b.sizes();
    let (n, half) = (4 * z.e, 2 * z.e);
    b.replace(GraphRole::Decoder, &decoder(z, 4, half).encode());
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Contract { output, .. } if output == "low_res_masks",
        [
            &path,
            "output \"low_res_masks\"",
            &format!("is f32 1×4×{half}×{half}"),
            &format!("the contract expects f32 1×4×{n}×{n}"),
        ]
    );
}

// ---------------------------------------------------------------------------
// The embedding size E: the graphs', which the manifest must say

/// LiteMedSAM's sizes: S = 256, E = 64 (a 256×256 dense prompt, one input
/// pixel per cell). Graphs of that E and a manifest saying it load, and a
/// frame runs through them (the hand-built graphs: a flat CAM, a prompt of
/// the whole image, a decoder that pools the dense prompt).
#[test]
fn a_bundle_of_e_64_at_s_256_loads_and_runs() {
    let mut b = TestBundle::new("e64");
    b.set_embedding_size(64);
    let z = b.sizes();
    assert_eq!((z.s, z.e), (256, 64));
    b.replace(
        GraphRole::Classifier,
        &classifier_named(z, "image").encode(),
    )
    .replace(GraphRole::Encoder, &encoder(z, EMBED_DIM as i64).encode())
    .replace(GraphRole::Decoder, &decoder(z, 4, 4 * z.e).encode());
    let bundle = Bundle::open(&b.dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bundle.manifest().input.embedding_size, 64);
    let mut pipeline =
        Pipeline::with_decoder(&bundle, DecoderKind::Tract).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pipeline.graphs().cam_size, (64, 64));
    let frame = Frame::new(40, 30, PixelFormat::Gray8, vec![250; 40 * 30]).unwrap();
    let mut mask = Mask::zeros(1, 1);
    let r = pipeline
        .process(&frame, &mut mask)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outcome, Outcome::Segmented, "{r:?}");
    assert_eq!(r.box_input, Some([0.0, 0.0, 255.0, 255.0]));
    assert_eq!(r.mask_area, 40 * 30);
}

#[test]
fn encoder_embeddings_of_another_grid() {
    let b = TestBundle::new("embed-grid");
    let z = b.sizes();
    let big = Sizes { e: 2 * z.e, ..z };
    b.replace(GraphRole::Encoder, &encoder(big, EMBED_DIM as i64).encode());
    let path = b.graph_path(GraphRole::Encoder).display().to_string();
    let (e, e2) = (z.e, big.e);
    assert_err!(
        b.pipeline_err(),
        PipelineError::EmbeddingSize { path: p, tensor, .. }
            if p.ends_with("encoder.onnx") && tensor == "output \"image_embeddings\"",
        [
            &path,
            "output \"image_embeddings\"",
            &format!("is 1×256×{e2}×{e2}"),
            &format!("input.embedding_size = {e}"),
            &format!("makes it 1×256×{e}×{e}"),
        ]
    );
}

/// The tract decoder's inputs of another E: `image_embeddings` is checked
/// first; a decoder whose `mask_input` alone is off is named by it.
#[test]
fn decoder_inputs_of_another_grid() {
    let b = TestBundle::new("decoder-grid");
    let z = b.sizes();
    let big = Sizes { e: 2 * z.e, ..z };
    b.replace(GraphRole::Decoder, &decoder(big, 4, 4 * big.e).encode());
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    let (e, e2) = (z.e, big.e);
    assert_err!(
        b.pipeline_err(),
        PipelineError::EmbeddingSize { tensor, .. } if tensor == "input \"image_embeddings\"",
        [
            &path,
            &format!("is 1×256×{e2}×{e2}"),
            &format!("input.embedding_size = {e}"),
            &format!("makes it 1×256×{e}×{e}"),
        ]
    );

    let mut g = decoder(z, 4, 4 * z.e);
    let (n, n2) = (4 * z.e, 4 * big.e);
    let mask_input = Onnx::default()
        .input("mask_input", &[1, 1, n2, n2])
        .graph
        .input;
    for i in &mut g.graph.input {
        if i.name == "mask_input" {
            *i = mask_input[0].clone();
        }
    }
    b.replace(GraphRole::Decoder, &g.encode());
    assert_err!(
        b.pipeline_err(),
        PipelineError::EmbeddingSize { tensor, .. } if tensor == "input \"mask_input\"",
        [
            &path,
            &format!("is 1×1×{n2}×{n2}"),
            &format!("input.embedding_size = {e}"),
            &format!("makes it 1×1×{n}×{n}"),
        ]
    );
}

/// A manifest whose E (valid on its own: 4E divides S) is not the graphs':
/// the native decoder names the field too.
#[test]
fn native_decoder_of_another_embedding_size() {
    let mut b = TestBundle::new("native-grid");
    let e = b.sizes().e;
    b.set_embedding_size(2 * e as u32);
    let z = b.sizes();
    b.replace(GraphRole::Encoder, &encoder(z, EMBED_DIM as i64).encode());
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert_err!(
        b.pipeline_err_with(DecoderKind::Native),
        PipelineError::DecoderMismatch { field, .. } if *field == "input.embedding_size",
        [
            &path,
            &format!("the graph has embedding size {e}"),
            &format!("(input.embedding_size) says {}", 2 * e),
        ]
    );
}

// ---------------------------------------------------------------------------
// The native decoder

/// A decoder with the contract's interface but none of SAM's weights: tract
/// runs it (see `hand_built_graphs_meet_the_contract`), the native decoder
/// refuses it, naming the file and the first SAM parameter it looked for.
#[test]
fn native_decoder_on_a_graph_without_sam_weights() {
    let b = TestBundle::new("native-not-sam");
    let z = b.sizes();
    b.replace(GraphRole::Decoder, &decoder(z, 4, 4 * z.e).encode());
    let path = b.graph_path(GraphRole::Decoder);
    let text = path.display().to_string();
    assert_err!(
        b.pipeline_err_with(DecoderKind::Native),
        PipelineError::Decoder { path: p, error } if *p == path
            && matches!(&**error, DecoderError::MissingWeight { name, .. }
                if name.starts_with("prompt_encoder.")),
        [&format!("native decoder, {text}: weight prompt_encoder."), "is missing"]
    );
}

/// A decoder file that is not ONNX: the native decoder says so, naming the
/// file once.
#[test]
fn native_decoder_on_a_file_that_is_not_onnx() {
    let b = TestBundle::new("native-garbage");
    b.replace(GraphRole::Decoder, b"not an ONNX model");
    let path = b.graph_path(GraphRole::Decoder);
    let text = path.display().to_string();
    let err = b.pipeline_err_with(DecoderKind::Native);
    assert_err!(
        &err,
        PipelineError::Decoder { error, .. } if matches!(**error, DecoderError::Read { .. }),
        [&format!(
            "native decoder, {text}: cannot read the ONNX model"
        )]
    );
    assert_eq!(err.to_string().matches(&text).count(), 1, "{err}");
}

// ---------------------------------------------------------------------------
// Graphs tract cannot load

#[test]
fn classifier_with_an_operator_that_does_not_exist() {
    let b = TestBundle::new("no-such-op");
    let z = b.sizes();
    b.replace(
        GraphRole::Classifier,
        &add_cam(add_logits(gray_image(z, "image")), z, "NoSuchOp").encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::Optimize { .. }),
        [&path, "NoSuchOp"]
    );
}

/// `LpPool` is a real ONNX operator that tract 0.23 does not implement.
#[test]
fn classifier_with_an_operator_tract_does_not_implement() {
    let b = TestBundle::new("lp-pool");
    let z = b.sizes();
    b.replace(
        GraphRole::Classifier,
        &add_cam(add_logits(gray_image(z, "image")), z, "LpPool").encode(),
    );
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::Optimize { .. }),
        [&path, "LpPool"]
    );
}

#[test]
fn encoder_that_is_not_onnx() {
    let b = TestBundle::new("not-onnx");
    // xorshift64: the same bytes every run.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    b.replace(GraphRole::Encoder, &bytes);
    let path = b.graph_path(GraphRole::Encoder).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::Load { path: p, .. }) if p.ends_with("encoder.onnx"),
        [&path, "cannot load ONNX graph"]
    );
}

/// An empty file decodes as an ONNX model without a graph.
#[test]
fn decoder_that_is_an_empty_file() {
    let b = TestBundle::new("empty");
    b.replace(GraphRole::Decoder, b"");
    let path = b.graph_path(GraphRole::Decoder).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::Load { path: p, .. }) if p.ends_with("decoder.onnx"),
        [&path, "cannot load ONNX graph", "does not contain a graph"]
    );
}
