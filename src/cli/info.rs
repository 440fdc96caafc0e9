//! `sammix info`: check a bundle and describe it.

use std::process::ExitCode;

use anyhow::{bail, Context};
use sammix::bundle::{ClassifierInput, GraphRole, InputColor};
use sammix::graph::Plan;
use sammix::pipeline::DecoderKind;
use serde_json::{json, Value};

use super::common;
use super::InfoArgs;

fn shape(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

fn graph_json(plan: &Plan) -> Value {
    json!({
        "inputs": plan.inputs().iter().map(|i| json!({
            "name": i.name, "type": format!("{:?}", i.datum_type), "shape": i.shape,
        })).collect::<Vec<_>>(),
        "outputs": plan.outputs().iter().map(|o| json!({
            "name": o.name, "type": format!("{:?}", o.datum_type), "shape": o.shape,
        })).collect::<Vec<_>>(),
    })
}

/// The optional features this binary was built with.
fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "v4l") {
        f.push("v4l");
    }
    if cfg!(feature = "linux-gpio") {
        f.push("linux-gpio");
    }
    f
}

/// `sammix info --board`: the compiled-in board profile and the build's
/// features (what a package can capture from and drive).
fn board(json: bool) -> anyhow::Result<ExitCode> {
    let p = sammix::board::profile::current();
    if json {
        let mut v = p.to_json();
        v["source"] = sammix::board::profile::SOURCE.into();
        v["features"] = features().into();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("{p}");
        outln!(
            "  (from {}, SAMMIX_BOARD at build time; features: {})",
            sammix::board::profile::SOURCE,
            match features() {
                f if f.is_empty() => "none".to_string(),
                f => f.join(", "),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    if args.board {
        return board(args.json);
    }
    // Both decoders, so that both are checked and tract's plan can show
    // the decoder graph's inputs and outputs.
    let (bundle, mut pipeline) =
        common::open(&args.bundle, DecoderKind::default(), &Default::default())?;
    pipeline.set_decoder(DecoderKind::Tract).with_context(|| {
        format!(
            "cannot load the tract decoder of bundle {}",
            bundle.dir().display()
        )
    })?;
    let native = pipeline
        .native_decoder()
        .map(common::native_summary)
        .unwrap_or_default();
    let m = bundle.manifest();
    let g = pipeline.graphs();
    let Some(decoder) = &g.decoder else {
        bail!("the tract decoder plan is not loaded");
    };
    let plans = [
        (GraphRole::Classifier, &g.classifier),
        (GraphRole::Encoder, &g.encoder),
        (GraphRole::Decoder, decoder),
    ];
    let mut graphs = serde_json::Map::new();
    for (role, plan) in plans {
        let entry = m.graphs.get(role);
        let path = bundle.graph_path(role);
        let bytes = std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
        let mut v = graph_json(plan);
        v["file"] = entry.file.clone().into();
        v["precision"] = entry.precision.as_str().into();
        v["bytes"] = bytes.into();
        v["sha256"] = entry.sha256.clone().into();
        if role == GraphRole::Classifier {
            v["input"] = m.graphs.classifier_input.as_str().into();
        }
        graphs.insert(role.key().to_string(), v);
    }
    let total: u64 = m
        .checksums
        .keys()
        .map(|f| {
            std::fs::metadata(bundle.path_of(f))
                .map(|md| md.len())
                .unwrap_or(0)
        })
        .sum();
    let report = json!({
        "bundle": bundle.dir().display().to_string(),
        "checks": "manifest schema, every file's sha256, no unlisted file, graphs loaded against the contract, the native decoder loaded: passed",
        "signature": bundle.provenance(),
        "manifest": m,
        "graphs": graphs,
        "cam_size": [g.cam_size.0, g.cam_size.1],
        "decoder_masks": g.mask_count,
        "decoder_default": DecoderKind::default(),
        "native_decoder": native,
        "encoder_backend": pipeline.encoder_backend(),
        "encoder_backend_name": pipeline.encoder_backend_name(),
        "encoder_fallback": pipeline.encoder_fallback(),
        "other_files": m.checksums.len(),
        "other_files_bytes": total,
    });
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("bundle {} ({})", m.name, bundle.dir().display());
    outln!("  {}", m.description);
    outln!("  checks passed: manifest schema {}, sha256 of every file, no unlisted file, graph contract, native decoder", m.schema);
    outln!("  signature: {}", bundle.provenance());
    let i = &m.input;
    outln!(
        "input: {}×{}×{} ({} resize), color {} ({}), mean {:?}, std {:?}; embeddings 256×{e}×{e}, dense prompt {d}×{d}",
        i.channels,
        i.size,
        i.size,
        i.resize.as_str(),
        i.color,
        match i.color {
            InputColor::Gray => "the frame's luma in every channel",
            InputColor::Rgb => "the frame's R, G, B; a gray frame replicated",
        },
        i.mean,
        i.std,
        e = i.embedding_size,
        d = 4 * i.embedding_size
    );
    let p = &m.prompt;
    outln!(
        "prompt: cam_threshold {}, min_component_px {}, box_margin {}, dense_logit {}, max_boxes {}, refine_rounds {}",
        p.cam_threshold,
        p.min_component_px,
        p.box_margin,
        p.dense_logit,
        p.max_boxes,
        p.refine_rounds
    );
    outln!(
        "gate: presence_threshold {}; decoder: mask_tokens {:?}, mask_threshold {}",
        m.gate.presence_threshold,
        m.decoder.mask_tokens,
        m.decoder.mask_threshold
    );
    outln!(
        "decoder: {} by default (--decoder native|tract); {native}",
        DecoderKind::default()
    );
    outln!(
        "encoder backend: {} (board profile: {}; --backend cpu|gpu|auto){}",
        pipeline.encoder_backend_name(),
        sammix::board::profile::current().backend.encoder.as_str(),
        pipeline
            .encoder_fallback()
            .map_or(String::new(), |why| format!("; {why}"))
    );
    outln!(
        "classifier input: {}",
        match m.graphs.classifier_input {
            ClassifierInput::Image => "image (the classifier gates the encoder)",
            ClassifierInput::ImageEmbeddings =>
                "image_embeddings (the encoder runs first, on every frame)",
        }
    );
    for (role, plan) in plans {
        let entry = m.graphs.get(role);
        let path = bundle.graph_path(role);
        let bytes = std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
        outln!(
            "{}: {} ({}, {:.1} MB, sha256 {}…)",
            role.key(),
            entry.file,
            entry.precision.as_str(),
            bytes as f64 / 1e6,
            &entry.sha256[..16.min(entry.sha256.len())]
        );
        for t in plan.inputs() {
            outln!(
                "    in  {:<18} {:?} {}",
                t.name,
                t.datum_type,
                shape(&t.shape)
            );
        }
        for o in plan.outputs() {
            let s = o.shape.as_deref().map_or("?".to_string(), shape);
            outln!("    out {:<18} {:?} {}", o.name, o.datum_type, s);
        }
    }
    outln!(
        "other files: {} ({:.1} MB), all checked",
        m.checksums.len(),
        total as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
