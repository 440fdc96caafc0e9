//! `sammix bench`: per-stage latency of a bundle on real frames.

use std::process::ExitCode;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::pipeline::{Outcome, StageTimes};
use sammix::source::SourceSpec;
use serde::Serialize;

use super::common::{self, Stats, DEMO_CLIP};
use super::BenchArgs;

/// At most this many distinct frames are held in memory and cycled.
const MAX_FRAMES: usize = 256;

#[derive(Serialize)]
struct Report {
    bundle: String,
    precision: String,
    source: String,
    cpu: String,
    threads: usize,
    engine: &'static str,
    decoder: &'static str,
    warmup: usize,
    iterations: usize,
    segmented: usize,
    gated: usize,
    frame_segmented_ms: Stats,
    frame_gated_ms: Stats,
    preprocess_ms: Stats,
    classifier_ms: Stats,
    prompt_ms: Stats,
    encoder_ms: Stats,
    decoder_ms: Stats,
    postprocess_ms: Stats,
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("CPU part"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let (bundle, mut pipeline) = common::open(&args.bundle)?;
    let spec = match &args.source {
        Some(s) => SourceSpec::parse(s)?,
        None => SourceSpec::File(bundle.path_of(DEMO_CLIP)),
    };
    let mut source = spec.open()?;
    let mut frames = Vec::new();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    while frames.len() < MAX_FRAMES && source.next_frame(&mut frame)? {
        frames.push(frame.clone());
    }
    if frames.is_empty() {
        bail!("{spec}: no frames");
    }
    let mut mask = Mask::zeros(1, 1);
    for f in frames.iter().cycle().take(args.warmup) {
        pipeline.process(f, &mut mask)?;
    }
    let bar = ProgressBar::new(args.iterations as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("bench");
    let mut results = Vec::with_capacity(args.iterations);
    for f in frames.iter().cycle().take(args.iterations) {
        let r = pipeline.process(f, &mut mask)?;
        results.push((r.outcome, r.times));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let stat = |f: fn(&StageTimes) -> f64| {
        Stats::of(
            &results
                .iter()
                .map(|(_, t)| f(t))
                .filter(|&v| v > 0.0)
                .collect::<Vec<_>>(),
        )
    };
    let total = |seg: bool| {
        Stats::of(
            &results
                .iter()
                .filter(|(o, _)| (*o == Outcome::Segmented) == seg)
                .map(|(_, t)| t.total_ms)
                .collect::<Vec<_>>(),
        )
    };
    let segmented = results
        .iter()
        .filter(|(o, _)| *o == Outcome::Segmented)
        .count();
    let report = Report {
        bundle: bundle.dir().display().to_string(),
        precision: common::precision(&bundle),
        source: spec.to_string(),
        cpu: cpu_name(),
        threads: 1,
        engine: "tract-onnx 0.23.9 (its own kernels)",
        decoder: "tract (the native decoder is not in this build)",
        warmup: args.warmup,
        iterations: args.iterations,
        segmented,
        gated: results.len() - segmented,
        frame_segmented_ms: total(true),
        frame_gated_ms: total(false),
        preprocess_ms: stat(|t| t.preprocess_ms),
        classifier_ms: stat(|t| t.classifier_ms),
        prompt_ms: stat(|t| t.prompt_ms),
        encoder_ms: stat(|t| t.encoder_ms),
        decoder_ms: stat(|t| t.decoder_ms),
        postprocess_ms: stat(|t| t.postprocess_ms),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "sammix bench: {} ({}) on {}, {} frames after {} warm-up, one thread, {}",
        bundle.manifest().name,
        report.precision,
        report.source,
        report.iterations,
        report.warmup,
        report.cpu
    );
    outln!("engine: {}; decoder: {}", report.engine, report.decoder);
    outln!(
        "{:<22} {:>6} {:>9} {:>9} {:>9}",
        "ms",
        "n",
        "median",
        "p95",
        "p99"
    );
    let rows: [(&str, &Stats); 8] = [
        ("frame (segmented)", &report.frame_segmented_ms),
        ("frame (gated out)", &report.frame_gated_ms),
        ("preprocess", &report.preprocess_ms),
        ("classifier", &report.classifier_ms),
        ("prompt", &report.prompt_ms),
        ("encoder", &report.encoder_ms),
        ("decoder", &report.decoder_ms),
        ("postprocess", &report.postprocess_ms),
    ];
    for (name, s) in rows {
        outln!(
            "{name:<22} {:>6} {:>9.2} {:>9.2} {:>9.2}",
            s.n,
            s.p50,
            s.p95,
            s.p99
        );
    }
    Ok(ExitCode::SUCCESS)
}
