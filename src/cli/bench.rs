//! `sammix bench`: per-stage latency of a bundle on real frames, with the
//! native and the tract decoder on the same frames (each frame runs once
//! with each, alternately, so both see the same embeddings and prompts and
//! the same state of the machine), the kernels that ran, and how far the two
//! decoders' masks differ.

use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::kernels::{Kernels, Level};
use sammix::pipeline::{DecoderKind, Outcome, Pipeline, StageTimes};
use sammix::source::SourceSpec;
use serde::Serialize;

use super::common::{self, Stats, DEMO_CLIP};
use super::BenchArgs;

mod page;

/// At most this many distinct frames are held in memory and cycled.
const MAX_FRAMES: usize = 256;

/// Per-stage statistics of the frames one decoder ran.
#[derive(Serialize)]
struct Stages {
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

impl Stages {
    fn of(results: &[(Outcome, StageTimes)]) -> Stages {
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
        Stages {
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
        }
    }
}

/// Picks one stage's statistics.
type Stage = fn(&Stages) -> &Stats;

/// The kernels the native decoder ran.
#[derive(Serialize)]
struct KernelReport {
    /// `Kernels::name()`: the level that ran.
    name: &'static str,
    /// The CPU's best level (`SAMMIX_KERNELS` may have lowered the one run).
    cpu_best: String,
    gemm_i8: &'static str,
    gemm_f32: &'static str,
    rows: &'static str,
}

/// How far the two decoders' masks differ on the frames both segmented.
#[derive(Serialize)]
struct Agreement {
    /// Frames both decoders segmented.
    frames: usize,
    /// Frames where one segmented and the other did not (should be 0: the
    /// gate and the prompt come before the decoder).
    outcome_differs: usize,
    /// Lowest mask IoU (frame size) between the decoders.
    min_mask_iou: f64,
    /// Mean mask IoU.
    mean_mask_iou: f64,
}

#[derive(Serialize)]
struct Report {
    bundle: String,
    precision: String,
    source: String,
    cpu: String,
    /// "release", or "debug" (timings of a debug build mean little).
    build: &'static str,
    threads: usize,
    engine: String,
    /// What ran the classifier (`CPU (native kernels)`, `CPU (tract)`).
    classifier_backend: String,
    /// What ran the encoder (`CPU (native kernels)`, `CPU (tract)`).
    encoder_backend: String,
    /// The decoder `run` and `segment` use unless told otherwise.
    decoder_default: DecoderKind,
    native_decoder: String,
    kernels: KernelReport,
    warmup: usize,
    iterations: usize,
    /// Median decoder milliseconds, by decoder, over the segmented frames.
    decoder_median_ms: BTreeMap<&'static str, f64>,
    /// tract's median over the native decoder's.
    decoder_speedup: f64,
    agreement: Agreement,
    /// Every stage, by decoder (each frame ran once with each).
    stages: BTreeMap<&'static str, Stages>,
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

/// One frame through the pipeline with its current decoder; its outcome and
/// stage times go to `results`.
fn pass(
    pipeline: &mut Pipeline,
    frame: &Frame,
    mask: &mut Mask,
    results: &mut Vec<(Outcome, StageTimes)>,
) -> anyhow::Result<()> {
    let r = pipeline.process(frame, mask)?;
    results.push((r.outcome, r.times));
    Ok(())
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    // Native first (the default); tract's decoder plan is loaded beside it,
    // and every frame runs once with each decoder, so both see the same
    // embeddings and prompts.
    let (bundle, mut pipeline) =
        common::open(&args.bundle, DecoderKind::Native, &Default::default())?;
    pipeline.set_decoder(DecoderKind::Tract)?;
    pipeline.set_decoder(DecoderKind::Native)?;
    let native_decoder = pipeline
        .native_decoder()
        .map(common::native_summary)
        .unwrap_or_default();
    let kern = pipeline
        .native_decoder()
        .map_or(*Kernels::get(), |d| *d.kernels());
    let spec = match &args.source {
        Some(s) => SourceSpec::parse(s)?,
        None => SourceSpec::File(bundle.path_of(DEMO_CLIP)),
    };
    if let Some(dir) = &args.report {
        // before the frames run, not after
        super::report::create_dir(dir)?;
    }
    let mut source = spec.open_as(bundle.manifest().input.color.pixel_format())?;
    let mut frames = Vec::new();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    while frames.len() < MAX_FRAMES && source.next_frame(&mut frame)? {
        frames.push(frame.clone());
    }
    if frames.is_empty() {
        bail!("{spec}: no frames");
    }
    let (mut mask, mut other) = (Mask::zeros(1, 1), Mask::zeros(1, 1));
    let mut scratch = Vec::new();
    for f in frames.iter().cycle().take(args.warmup) {
        for kind in DecoderKind::ALL {
            pipeline.set_decoder(kind)?;
            pass(&mut pipeline, f, &mut mask, &mut scratch)?;
        }
    }
    let bar = ProgressBar::new(args.iterations as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("bench (native and tract decoders)");
    let mut native = Vec::with_capacity(args.iterations);
    let mut tract = Vec::with_capacity(args.iterations);
    let mut ious = Vec::new();
    let mut outcome_differs = 0;
    for f in frames.iter().cycle().take(args.iterations) {
        pipeline.set_decoder(DecoderKind::Native)?;
        pass(&mut pipeline, f, &mut mask, &mut native)?;
        pipeline.set_decoder(DecoderKind::Tract)?;
        pass(&mut pipeline, f, &mut other, &mut tract)?;
        let (a, b) = (native[native.len() - 1].0, tract[tract.len() - 1].0);
        if a != b {
            outcome_differs += 1;
        } else if a == Outcome::Segmented {
            ious.push(sammix::metrics::iou(&mask, &other)?);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let stages = BTreeMap::from([
        (DecoderKind::Native.as_str(), Stages::of(&native)),
        (DecoderKind::Tract.as_str(), Stages::of(&tract)),
    ]);
    let decoder_median_ms: BTreeMap<_, _> =
        stages.iter().map(|(k, s)| (*k, s.decoder_ms.p50)).collect();
    let ops = kern.op_names();
    let report = Report {
        bundle: bundle.dir().display().to_string(),
        precision: common::precision(&bundle),
        source: spec.to_string(),
        cpu: cpu_name(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        threads: 1,
        engine: format!(
            "classifier: {}; encoder: {}; decoder: native and tract-onnx (tract-onnx 0.23.9)",
            pipeline.classifier_backend_name(),
            pipeline.encoder_backend_name()
        ),
        classifier_backend: pipeline.classifier_backend_name().to_string(),
        encoder_backend: pipeline.encoder_backend_name().to_string(),
        decoder_default: DecoderKind::default(),
        native_decoder,
        kernels: KernelReport {
            name: kern.name(),
            cpu_best: Level::best().to_string(),
            gemm_i8: ops.gemm_i8,
            gemm_f32: ops.gemm_f32,
            rows: ops.rows,
        },
        warmup: args.warmup,
        iterations: args.iterations,
        decoder_speedup: decoder_median_ms["tract"] / decoder_median_ms["native"],
        decoder_median_ms,
        agreement: Agreement {
            frames: ious.len(),
            outcome_differs,
            min_mask_iou: ious.iter().copied().fold(1.0, f64::min),
            mean_mask_iou: if ious.is_empty() {
                1.0
            } else {
                ious.iter().sum::<f64>() / ious.len() as f64
            },
        },
        stages,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&bundle.manifest().name, &report);
    }
    // last: the timings are out even if the page cannot be written
    if let Some(dir) = &args.report {
        // from the text, so that the page shows the numbers as printed
        let json = serde_json::from_str(&serde_json::to_string(&report)?)?;
        let page = page::write(dir, json, &native, &tract)?;
        log::info!("report: {}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as a table on the terminal.
fn print_table(name: &str, report: &Report) {
    outln!(
        "sammix bench: {} ({}) on {}, {} frames after {} warm-up, each with both decoders, one thread, {}",
        name,
        report.precision,
        report.source,
        report.iterations,
        report.warmup,
        report.cpu
    );
    outln!("engine: {}", report.engine);
    outln!("{}", report.native_decoder);
    outln!(
        "{:<22} {:>6} {:>9} {:>9} {:>9}   {:>6} {:>9} {:>9} {:>9}",
        "ms",
        "n",
        "native",
        "p95",
        "p99",
        "n",
        "tract",
        "p95",
        "p99"
    );
    let rows: [(&str, Stage); 8] = [
        ("frame (segmented)", |s| &s.frame_segmented_ms),
        ("frame (gated out)", |s| &s.frame_gated_ms),
        ("preprocess", |s| &s.preprocess_ms),
        ("classifier", |s| &s.classifier_ms),
        ("prompt", |s| &s.prompt_ms),
        ("encoder", |s| &s.encoder_ms),
        ("decoder", |s| &s.decoder_ms),
        ("postprocess", |s| &s.postprocess_ms),
    ];
    let (n, t) = (&report.stages["native"], &report.stages["tract"]);
    for (name, get) in rows {
        let (a, b) = (get(n), get(t));
        outln!(
            "{name:<22} {:>6} {:>9.2} {:>9.2} {:>9.2}   {:>6} {:>9.2} {:>9.2} {:>9.2}",
            a.n,
            a.p50,
            a.p95,
            a.p99,
            b.n,
            b.p50,
            b.p95,
            b.p99
        );
    }
    let g = &report.agreement;
    outln!(
        "decoder median: native {:.2} ms, tract {:.2} ms ({:.2}x); masks on {} frames both segmented: IoU min {:.4}, mean {:.4}{}",
        report.decoder_median_ms["native"],
        report.decoder_median_ms["tract"],
        report.decoder_speedup,
        g.frames,
        g.min_mask_iou,
        g.mean_mask_iou,
        if g.outcome_differs > 0 {
            format!("; {} frames with different outcomes", g.outcome_differs)
        } else {
            String::new()
        }
    );
}
