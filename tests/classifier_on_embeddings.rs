//! A classifier that reads the encoder's image embeddings
//! (`[graphs.classifier] input = "image_embeddings"`): the contract loads it
//! with that input, and the pipeline runs preprocess → encoder → classifier
//! → gate → prompt → decoder, with embedding reuse and without overlap.
//!
//! On hand-built graphs (`tests/common`): the encoder's embeddings are the
//! pooled normalized image, so the classifier's presence is the frame's
//! brightness and its CAM flat; the decoder pools the dense prompt. The
//! accurate bundle (`models/sammix-us-medsam`, LiteMedSAM with a presence/CAM
//! head on its 64×64 embeddings) is run when it is there.

#[macro_use]
mod common;

use std::path::Path;

use common::*;
use sammix::bundle::{Bundle, BundleError, ClassifierInput, GraphRole, InputColor};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::graph::GraphError;
use sammix::pipeline::{DecoderKind, FrameResult, Outcome, Pipeline, PipelineError, EMBED_DIM};

/// A bundle whose classifier reads the embeddings: all three graphs
/// hand-built, the manifest saying so.
fn embeddings_bundle(name: &str) -> TestBundle {
    let mut b = TestBundle::new(name);
    b.set_classifier_input("image_embeddings");
    let z = b.sizes();
    b.replace(GraphRole::Classifier, &embeddings_classifier(z).encode())
        .replace(GraphRole::Encoder, &encoder(z, EMBED_DIM as i64).encode())
        .replace(GraphRole::Decoder, &decoder(z, 4, 4 * z.e).encode());
    b
}

fn pipeline(b: &TestBundle) -> Pipeline {
    let bundle = Bundle::open(&b.dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bundle.manifest().graphs.classifier_input,
        ClassifierInput::ImageEmbeddings
    );
    Pipeline::with_decoder(&bundle, DecoderKind::Tract).unwrap_or_else(|e| panic!("{e}"))
}

/// A flat gray frame: 250 is present (normalized +1.9), 10 absent (−1.8).
fn flat(value: u8) -> Frame {
    Frame::new(40, 30, PixelFormat::Gray8, vec![value; 40 * 30]).unwrap()
}

fn run(p: &mut Pipeline, value: u8) -> (FrameResult, Mask) {
    let mut mask = Mask::zeros(1, 1);
    let r = p
        .process(&flat(value), &mut mask)
        .unwrap_or_else(|e| panic!("{e}"));
    (r, mask)
}

#[test]
fn the_encoder_runs_before_the_classifier() {
    let b = embeddings_bundle("order");
    let mut p = pipeline(&b);
    let e = b.sizes().e as usize;
    assert_eq!(p.graphs().cam_size, (e, e));
    let input = &p.graphs().classifier.inputs()[0];
    assert_eq!(input.name, "image_embeddings");
    assert_eq!(input.shape, vec![1, EMBED_DIM, e, e]);

    let (r, mask) = run(&mut p, 250);
    assert_eq!(r.outcome, Outcome::Segmented, "{r:?}");
    assert!(r.presence > 0.8, "{r:?}");
    assert_eq!(r.box_input, Some([0.0, 0.0, 255.0, 255.0]));
    assert_eq!(mask.area(), 40 * 30);
    let t = r.times;
    assert!(
        t.encoder_ms > 0.0 && t.classifier_ms > 0.0 && t.decoder_ms > 0.0,
        "{t:?}"
    );

    // Gated out, the encoder has run all the same (the classifier read it).
    let (r, mask) = run(&mut p, 10);
    assert_eq!(r.outcome, Outcome::Absent, "{r:?}");
    assert!(r.presence < 0.2, "{r:?}");
    assert_eq!(mask.area(), 0);
    let t = r.times;
    assert!(t.encoder_ms > 0.0 && t.classifier_ms > 0.0, "{t:?}");
    assert_eq!(t.decoder_ms, 0.0, "{t:?}");
}

/// The cached embeddings skip the encoder, and the classifier reads them.
#[test]
fn embedding_reuse_feeds_the_classifier() {
    let b = embeddings_bundle("reuse");
    let mut plain = pipeline(&b);
    let mut reusing = pipeline(&b);
    reusing.set_embedding_reuse(Some(0.01));
    let mut reused = Vec::new();
    for value in [250, 250, 10, 10, 250] {
        let (want, want_mask) = run(&mut plain, value);
        let (got, got_mask) = run(&mut reusing, value);
        assert!(!want.embedding_reused);
        assert_eq!(
            (got.outcome, got.presence, got.box_input),
            (want.outcome, want.presence, want.box_input),
            "{value}"
        );
        assert_eq!(got_mask.data(), want_mask.data(), "{value}");
        reused.push(got.embedding_reused);
    }
    // The second of each run of equal frames, absent ones included.
    assert_eq!(reused, [false, true, false, true, false]);
}

/// Overlap cannot start the encoder beside a classifier that needs its
/// output: it is ignored, and says so.
#[test]
fn overlap_is_ignored() {
    let b = embeddings_bundle("overlap");
    let mut p = pipeline(&b);
    p.set_overlap(true);
    assert!(!p.overlap());
    let mut plain = pipeline(&b);
    for value in [250, 250, 10, 250] {
        let (got, got_mask) = run(&mut p, value);
        let (want, want_mask) = run(&mut plain, value);
        assert_eq!(got.outcome, want.outcome, "{value}");
        assert_eq!(got_mask.data(), want_mask.data(), "{value}");
    }
}

#[test]
fn the_classifier_input_must_be_the_manifest_s() {
    // The manifest says image_embeddings, the classifier takes the image.
    let mut b = TestBundle::new("wants-embeddings");
    b.set_classifier_input("image_embeddings");
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownInput { name, .. }) if name == "image_embeddings",
        [&path, "no input \"image_embeddings\"", "\"image\""]
    );

    // The manifest says image (by default), the classifier takes embeddings.
    let b = TestBundle::new("wants-image");
    let z = b.sizes();
    b.replace(GraphRole::Classifier, &embeddings_classifier(z).encode());
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::Graph(GraphError::UnknownInput { name, .. }) if name == "image",
        [&path, "no input \"image\""]
    );

    // Embeddings of another E: named by the manifest field.
    let mut b = TestBundle::new("classifier-grid");
    b.set_classifier_input("image_embeddings");
    let z = b.sizes();
    let big = Sizes { e: 2 * z.e, ..z };
    b.replace(GraphRole::Classifier, &embeddings_classifier(big).encode());
    let path = b.graph_path(GraphRole::Classifier).display().to_string();
    assert_err!(
        b.pipeline_err(),
        PipelineError::EmbeddingSize { tensor, .. } if tensor == "input \"image_embeddings\"",
        [
            &path,
            &format!("is 1×256×{e2}×{e2}", e2 = big.e),
            &format!("input.embedding_size = {}", z.e),
        ]
    );

    // A value the schema does not have.
    let mut b = TestBundle::new("classifier-input-value");
    b.set_classifier_input("embeddings");
    match Bundle::open(&b.dir) {
        Err(e @ BundleError::WrongType { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("`graphs.classifier.input`")
                    && text.contains("`image` or `image_embeddings`"),
                "{text}"
            );
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
}

/// The accurate bundle, when it has been built: it loads with its
/// classifier on the embeddings and segments its demo clip's first frames.
#[test]
fn the_medsam_bundle_runs_when_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-medsam");
    if !dir.join("sammix.toml").is_file() {
        eprintln!(
            "SKIPPED: {} is not there (build it with the recipe; then also run the \
             reference tests with SAMMIX_REFERENCE_BUNDLE={})",
            dir.display(),
            dir.display()
        );
        return;
    }
    let bundle = Bundle::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let m = bundle.manifest();
    assert_eq!(m.graphs.classifier_input, ClassifierInput::ImageEmbeddings);
    let mut p = Pipeline::new(&bundle).unwrap_or_else(|e| panic!("{e}"));
    let spec = sammix::source::SourceSpec::File(bundle.path_of("demo/clip.y4m"));
    let mut source = spec.open().unwrap_or_else(|e| panic!("{e}"));
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut mask = Mask::zeros(1, 1);
    let mut outcomes = Vec::new();
    while outcomes.len() < 4 && source.next_frame(&mut frame).unwrap() {
        let r = p
            .process(&frame, &mut mask)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.times.encoder_ms > 0.0, "{r:?}");
        outcomes.push(r.outcome);
    }
    eprintln!("{}: {outcomes:?}", dir.display());
    assert!(!outcomes.is_empty());

    // Three channels, trained on gray frames (`input.color` absent: gray):
    // an RGB frame gives its luma in every channel, not its colours.
    assert_eq!((m.input.channels, m.input.color), (3, InputColor::Gray));
    let s = m.input.size as usize;
    let mut rgb = Frame::zeros(s, s, PixelFormat::Rgb8);
    for (i, px) in rgb.data_mut().chunks_exact_mut(3).enumerate() {
        px.copy_from_slice(&[(i % s) as u8, (i / s) as u8, ((i * 7) % 256) as u8]);
    }
    p.process(&rgb, &mut mask).unwrap_or_else(|e| panic!("{e}"));
    let (c0, rest) = p.input().split_at(s * s);
    assert_eq!(&rest[..s * s], c0, "channel 1");
    assert_eq!(&rest[s * s..], c0, "channel 2");
    for (i, &v) in c0.iter().enumerate() {
        // S×S in, mean 0, std 255: the luma over 255.
        let want = (rgb.luma(i % s, i / s) - m.input.mean[0]) / m.input.std[0];
        assert_eq!(v, want, "pixel {i}");
    }
}
