//! `sammix bench --report DIR`: the timings as a page.

use std::path::{Path, PathBuf};

use sammix::pipeline::{Outcome, StageTimes};
use serde_json::Value;

use super::super::report::{self, esc, Page, BLUE, GREEN, ORANGE, PURPLE, RED, SKY};

/// One stage's time in a frame's `StageTimes`.
type StageOf = fn(&StageTimes) -> f64;

/// The stages, as `StageTimes` and the JSON report name them.
const STAGES: [(&str, StageOf); 6] = [
    ("preprocess_ms", |t| t.preprocess_ms),
    ("classifier_ms", |t| t.classifier_ms),
    ("prompt_ms", |t| t.prompt_ms),
    ("encoder_ms", |t| t.encoder_ms),
    ("decoder_ms", |t| t.decoder_ms),
    ("postprocess_ms", |t| t.postprocess_ms),
];

/// Writes `DIR/index.html` and `report.json`. `native` and `tract` are the
/// timed frames, in order, with each decoder (the same frames).
pub(super) fn write(
    dir: &Path,
    json: Value,
    native: &[(Outcome, StageTimes)],
    tract: &[(Outcome, StageTimes)],
) -> anyhow::Result<PathBuf> {
    let mut page = Page::new("sammix bench", json);
    let s = |p: &Page, k: &str| esc(&p.json_str(k).unwrap_or_default());
    let meta = format!(
        "Bundle <code>{}</code> ({}) on {}: {} frames after {} warm-up, each run once with each decoder, \
         one thread, on {} ({} build). Native decoder kernels: <b>{}</b> (this CPU's best: {}). Engine: {}.",
        s(&page, "/bundle"),
        s(&page, "/precision"),
        s(&page, "/source"),
        page.num("/iterations", 0),
        page.num("/warmup", 0),
        s(&page, "/cpu"),
        s(&page, "/build"),
        s(&page, "/kernels/name"),
        s(&page, "/kernels/cpu_best"),
        s(&page, "/engine"),
    );
    page.p(&meta);

    page.h2("Per stage, ms");
    let rows: Vec<Vec<String>> = [
        ("frame (segmented)", "frame_segmented_ms"),
        ("frame (gated out)", "frame_gated_ms"),
        ("preprocess", "preprocess_ms"),
        ("classifier", "classifier_ms"),
        ("prompt", "prompt_ms"),
        ("encoder", "encoder_ms"),
        ("decoder", "decoder_ms"),
        ("postprocess", "postprocess_ms"),
    ]
    .iter()
    .map(|(name, key)| {
        let mut r = vec![esc(name)];
        for d in ["native", "tract"] {
            r.push(page.num(&format!("/stages/{d}/{key}/n"), 0));
            for q in ["p50", "p95", "p99"] {
                r.push(page.num(&format!("/stages/{d}/{key}/{q}"), 2));
            }
        }
        r
    })
    .collect();
    page.table(
        &[
            "stage",
            "n",
            "native p50",
            "p95",
            "p99",
            "n",
            "tract p50",
            "p95",
            "p99",
        ],
        &rows,
    );
    page.p(&format!(
        "Decoder median: native {} ms, tract {} ms ({}×). Masks on the {} frames both segmented: IoU min {}, mean {}.",
        page.num("/decoder_median_ms/native", 2),
        page.num("/decoder_median_ms/tract", 2),
        page.num("/decoder_speedup", 2),
        page.num("/agreement/frames", 0),
        page.num("/agreement/min_mask_iou", 4),
        page.num("/agreement/mean_mask_iou", 4),
    ));

    page.h2("Latency per stage");
    let ms = |runs: &[(Outcome, StageTimes)], f: StageOf| -> Vec<f64> {
        runs.iter()
            .map(|(_, t)| f(t))
            .filter(|&v| v > 0.0)
            .collect()
    };
    let range = |v: &[&[f64]]| -> (f64, f64) {
        let hi = v.iter().flat_map(|s| s.iter()).copied().fold(0.0, f64::max);
        (0.0, if hi > 0.0 { hi * 1.05 } else { 1.0 })
    };
    let totals = (ms(native, |t| t.total_ms), ms(tract, |t| t.total_ms));
    page.chart(&report::histogram(
        "Frame (all stages)",
        "ms",
        &[
            ("native decoder", &totals.0, BLUE),
            ("tract decoder", &totals.1, ORANGE),
        ],
        range(&[&totals.0, &totals.1]),
        40,
    )?);
    for (key, f) in STAGES {
        let name = key.trim_end_matches("_ms");
        let a = ms(native, f);
        if key == "decoder_ms" {
            let b = ms(tract, f);
            page.chart(&report::histogram(
                "decoder",
                "ms",
                &[("native", &a, BLUE), ("tract", &b, ORANGE)],
                range(&[&a, &b]),
                40,
            )?);
        } else if !a.is_empty() {
            page.chart(&report::histogram(
                &format!("{name} ({} frames)", a.len()),
                "ms",
                &[("", &a, BLUE)],
                range(&[&a]),
                40,
            )?);
        }
    }

    page.h2("Timeline (native decoder)");
    let line = |f: StageOf| -> Vec<(f64, f64)> {
        native
            .iter()
            .enumerate()
            .map(|(i, (_, t))| (i as f64, f(t)))
            .collect()
    };
    page.chart(&report::lines(
        "Each timed frame in order",
        ("frame", "ms"),
        &[
            ("frame", line(|t| t.total_ms), RED),
            ("encoder", line(|t| t.encoder_ms), BLUE),
            ("classifier", line(|t| t.classifier_ms), GREEN),
            ("decoder", line(|t| t.decoder_ms), ORANGE),
            ("prompt", line(|t| t.prompt_ms), PURPLE),
            (
                "pre + post",
                line(|t| t.preprocess_ms + t.postprocess_ms),
                SKY,
            ),
        ],
    )?);
    page.write(dir)
}
