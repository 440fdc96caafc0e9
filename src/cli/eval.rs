//! `sammix eval`: a folder of images and masks through the pipeline, scored.

use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sammix::backend::BackendKind;
use sammix::bundle::ConfidenceParams;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::metrics::{self, next_click, ImageScores, Summary};
use sammix::pipeline::{DecoderKind, FrameResult, Outcome, Review};
use sammix::source::{FrameSource, ImageFolder};
use serde::Serialize;

use super::common;
use super::EvalArgs;

mod page;

/// The conventions, stated in the output.
const CONVENTIONS: &str = "mask: 0 background, non-zero target; an all-zero ground truth means the target is absent. \
Dice and IoU of an empty prediction on an empty ground truth are 1, of a non-empty one 0. \
HD95 (pixels, 95th percentile of symmetric surface distances) is averaged over images where both masks are non-empty. \
_positive means averaged over images whose ground truth is non-empty. \
Presence: predicted when sigmoid(logit) >= gate.presence_threshold.";

#[derive(Serialize)]
struct Report<'a> {
    bundle: String,
    precision: String,
    decoder: DecoderKind,
    /// The backend that ran the encoder (at the end), and why the CPU did
    /// instead of the one asked for.
    encoder_backend: BackendKind,
    encoder_fallback: Option<String>,
    data: String,
    conventions: &'static str,
    summary: Summary,
    /// The presence head against the ground truth (frames by truth and
    /// call).
    presence_confusion: Confusion,
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<ClickReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<ConfidenceReport>,
    images: &'a [Row],
}

/// One image's scores with what the pipeline knew about it (the confidence
/// flag's signals, from which the recipe chooses its thresholds).
#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    scores: ImageScores,
    /// Target pixels in the ground truth.
    gt_area: usize,
    presence: f32,
    outcome: Outcome,
    iou_prediction: Option<f32>,
    cam_peak: Option<f32>,
    review: Option<Review>,
}

/// Presence calls against the ground truth.
#[derive(Serialize, Default)]
struct Confusion {
    /// Target there, called present.
    true_present: usize,
    /// Target there, called absent.
    missed: usize,
    /// No target, called present.
    false_present: usize,
    /// No target, called absent.
    true_absent: usize,
}

impl Confusion {
    fn of(rows: &[Row]) -> Confusion {
        let mut c = Confusion::default();
        for r in rows {
            let called = r.scores.pred_present.unwrap_or(false);
            match (r.scores.gt_present, called) {
                (true, true) => c.true_present += 1,
                (true, false) => c.missed += 1,
                (false, true) => c.false_present += 1,
                (false, false) => c.true_absent += 1,
            }
        }
        c
    }
}

/// Frames scoring below this Dice are the ones the confidence flag should
/// find (issue 17's definition of a frame worth a clinician's look).
const BAD_DICE: f64 = 0.7;

/// How well the manifest's `[confidence]` rules find the bad frames.
#[derive(Serialize)]
struct ConfidenceReport {
    rules: ConfidenceParams,
    bad_frame: &'static str,
    frames: usize,
    bad_frames: usize,
    flagged: usize,
    flagged_bad: usize,
    /// Of the flagged frames, the fraction that are bad; `None` when none is flagged.
    precision: Option<f64>,
    /// Of the bad frames, the fraction flagged; `None` when none is bad.
    recall: Option<f64>,
    /// Per reason: frames flagged for it, and how many of them are bad.
    reasons: Vec<ReasonCount>,
}

#[derive(Serialize)]
struct ReasonCount {
    reason: Review,
    flagged: usize,
    bad: usize,
}

impl ConfidenceReport {
    fn new(rules: &ConfidenceParams, rows: &[Row]) -> ConfidenceReport {
        let bad = |r: &Row| r.scores.dice < BAD_DICE;
        let flagged = rows.iter().filter(|r| r.review.is_some()).count();
        let flagged_bad = rows.iter().filter(|r| r.review.is_some() && bad(r)).count();
        let bad_frames = rows.iter().filter(|r| bad(r)).count();
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        let mut reasons: Vec<ReasonCount> = Vec::new();
        for r in rows {
            let Some(reason) = r.review else { continue };
            let i = match reasons.iter().position(|c| c.reason == reason) {
                Some(i) => i,
                None => {
                    reasons.push(ReasonCount {
                        reason,
                        flagged: 0,
                        bad: 0,
                    });
                    reasons.len() - 1
                }
            };
            reasons[i].flagged += 1;
            reasons[i].bad += usize::from(bad(r));
        }
        ConfidenceReport {
            rules: rules.clone(),
            bad_frame: "Dice < 0.7 (an empty mask on a frame without target scores 1)",
            frames: rows.len(),
            bad_frames,
            flagged,
            flagged_bad,
            precision: ratio(flagged_bad, flagged),
            recall: ratio(flagged_bad, bad_frames),
            reasons,
        }
    }
}

impl Row {
    fn new(scores: ImageScores, gt_area: usize, r: &FrameResult) -> Row {
        Row {
            scores,
            gt_area,
            presence: r.presence,
            outcome: r.outcome,
            iou_prediction: r.iou_prediction,
            cam_peak: r.cam_peak,
            review: r.review,
        }
    }
}

/// `--clicks N`: Dice after 0, 1, … N simulated correction clicks.
#[derive(Serialize)]
struct ClickReport {
    /// How each click is chosen.
    rule: &'static str,
    /// Clicks per image at most (an image whose mask is right gets none).
    clicks: u32,
    /// Mean Dice over all images after 0, 1, … clicks.
    dice_all: Vec<f64>,
    /// Mean Dice over the images with a target.
    dice_positive: Vec<f64>,
    /// The 20 images with the lowest Dice before any click.
    worst: Worst,
    /// Corrections made, their decoder calls, and the encoder runs they
    /// caused (0 when every corrected frame's embeddings were cached).
    corrections: u64,
    decoder_calls: u64,
    encoder_runs: u64,
    /// Median wall time of one correction, ms.
    correction_ms_p50: f64,
    /// Per kind of click: how many, and the mean change of Dice each made.
    positive_clicks: KindReport,
    negative_clicks: KindReport,
}

#[derive(Serialize, Default)]
struct KindReport {
    clicks: u64,
    mean_dice_change: f64,
}

#[derive(Serialize)]
struct Worst {
    images: Vec<String>,
    dice: Vec<f64>,
}

fn kind_report((sum, n): (f64, u64)) -> KindReport {
    KindReport {
        clicks: n,
        mean_dice_change: if n > 0 { sum / n as f64 } else { 0.0 },
    }
}

/// Dice per image after 0..=N clicks, and the correction counts.
#[derive(Default)]
struct ClickRun {
    dice: Vec<Vec<f64>>,
    positive: Vec<bool>,
    names: Vec<String>,
    corrections: u64,
    decoder_calls: u64,
    encoder_runs: u64,
    ms: Vec<f64>,
    /// Sum of Dice changes and counts, for positive [0] and negative [1] clicks.
    kind: [(f64, u64); 2],
}

impl ClickRun {
    fn report(mut self, clicks: u32) -> ClickReport {
        let n = clicks as usize + 1;
        let mean = |rows: &[&Vec<f64>], k: usize| {
            if rows.is_empty() {
                0.0
            } else {
                rows.iter().map(|d| d[k]).sum::<f64>() / rows.len() as f64
            }
        };
        let all: Vec<&Vec<f64>> = self.dice.iter().collect();
        let pos: Vec<&Vec<f64>> = self
            .dice
            .iter()
            .zip(&self.positive)
            .filter(|(_, &p)| p)
            .map(|(d, _)| d)
            .collect();
        let mut order: Vec<usize> = (0..self.dice.len()).collect();
        order.sort_by(|&a, &b| self.dice[a][0].total_cmp(&self.dice[b][0]));
        order.truncate(20);
        let worst: Vec<&Vec<f64>> = order.iter().map(|&i| &self.dice[i]).collect();
        self.ms.sort_by(f64::total_cmp);
        ClickReport {
            rule: "the largest 8-connected wrong region (missed target or false target); a click at its most interior pixel, positive on a missed region, negative on a false one; clicks accumulate",
            clicks,
            dice_all: (0..n).map(|k| mean(&all, k)).collect(),
            dice_positive: (0..n).map(|k| mean(&pos, k)).collect(),
            worst: Worst {
                images: order.iter().map(|&i| self.names[i].clone()).collect(),
                dice: (0..n).map(|k| mean(&worst, k)).collect(),
            },
            corrections: self.corrections,
            decoder_calls: self.decoder_calls,
            encoder_runs: self.encoder_runs,
            correction_ms_p50: self.ms.get(self.ms.len() / 2).copied().unwrap_or(0.0),
            positive_clicks: kind_report(self.kind[0]),
            negative_clicks: kind_report(self.kind[1]),
        }
    }
}

pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (bundle, mut pipeline) =
        common::open(&args.bundle, args.decoder.decoder.into(), &args.backend)?;
    let images = args.data.join("images");
    let masks = args.data.join("masks");
    if !images.is_dir() || !masks.is_dir() {
        bail!(
            "{}: expected a folder holding images/ and masks/ (PNG files of the same names)",
            args.data.display()
        );
    }
    if let Some(dir) = &args.report {
        // before the frames run, not after
        page::create(dir)?;
    }
    let mut source = ImageFolder::open(&args.data)?;
    let files: Vec<_> = source.files().to_vec();
    let threshold = bundle.manifest().gate.presence_threshold;
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template(
            "{msg} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("eval");
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut mask = Mask::zeros(1, 1);
    let mut rows = Vec::with_capacity(files.len());
    let mut clicks = ClickRun::default();
    for file in &files {
        if !source.next_frame(&mut frame)? {
            break;
        }
        let result = pipeline.process(&frame, &mut mask)?;
        let Some(name) = file.file_name() else {
            continue;
        };
        let gt_path = masks.join(name);
        let gt = image_io::read_mask(&gt_path).with_context(|| {
            format!(
                "ground truth for {} (expected {})",
                file.display(),
                gt_path.display()
            )
        })?;
        let stem = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let row = ImageScores::new(
            stem.as_str(),
            &mask,
            &gt,
            Some(result.presence >= threshold),
        )
        .with_context(|| format!("{} against {}", file.display(), gt_path.display()))?;
        if args.clicks > 0 {
            let mut dice = vec![row.dice];
            for _ in 0..args.clicks {
                let last = dice[dice.len() - 1];
                let Some(click) = next_click(&mask, &gt)? else {
                    dice.push(last);
                    continue;
                };
                let before = pipeline.encoder_runs();
                let c = pipeline
                    .correct(&[click], &mut mask)
                    .with_context(|| format!("correcting {}", file.display()))?;
                clicks.encoder_runs += pipeline.encoder_runs() - before;
                clicks.corrections += 1;
                clicks.decoder_calls += c.decoder_calls as u64;
                clicks.ms.push(c.ms);
                let now = metrics::dice(&mask, &gt)?;
                let k = &mut clicks.kind[usize::from(!click.positive)];
                k.0 += now - last;
                k.1 += 1;
                dice.push(now);
            }
            clicks.dice.push(dice);
            clicks.positive.push(gt.data().iter().any(|&v| v != 0));
            clicks.names.push(stem);
        }
        rows.push(Row::new(row, gt.area(), &result));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scores: Vec<ImageScores> = rows.iter().map(|r| r.scores.clone()).collect();
    let report = Report {
        bundle: bundle.dir().display().to_string(),
        precision: common::precision(&bundle),
        decoder: pipeline.decoder(),
        encoder_backend: pipeline.encoder_backend(),
        encoder_fallback: pipeline.encoder_fallback().map(str::to_string),
        data: args.data.display().to_string(),
        conventions: CONVENTIONS,
        summary: Summary::from_rows(&scores),
        presence_confusion: Confusion::of(&rows),
        clicks: (args.clicks > 0).then(|| clicks.report(args.clicks)),
        confidence: bundle
            .manifest()
            .confidence
            .as_ref()
            .map(|c| ConfidenceReport::new(c, &rows)),
        images: &rows,
    };
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    outln!("{text}");
    // last: the scores are out even if the page cannot be written
    if let Some(dir) = &args.report {
        // from the text, so that the page shows the numbers as printed
        let json = serde_json::from_str(&text)?;
        let page = page::write(dir, json, &rows, &files, &masks, &mut pipeline)?;
        log::info!("report: {}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}
