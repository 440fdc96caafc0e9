//! `sammix kpi`: the pilot's numbers for the clinician's loop, per study.
//!
//! A study is one `sammix run --out` folder: its `results.jsonl` (one line
//! a frame, `review` set on flagged frames) and `corrections.jsonl` (one
//! line per correction request served, `--corrections`). What a pilot is
//! judged by: how many frames needed a correction, how many clicks, and how
//! long the clinician took to accept a frame once it was shown.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::KpiArgs;

/// One study's numbers.
#[derive(Debug, Default, Serialize)]
struct Study {
    study: String,
    /// Frames processed (lines of results.jsonl), when it is there.
    frames: Option<u64>,
    /// Of those, frames the confidence flag marked for review.
    flagged: Option<u64>,
    /// Correction requests served (applied or not).
    requests: u64,
    /// Click requests applied.
    corrections: u64,
    /// Clicks in the applied requests.
    clicks: u64,
    /// Distinct frames with at least one applied correction.
    frames_corrected: u64,
    /// corrections / frames_corrected.
    corrections_per_corrected_frame: Option<f64>,
    /// Requests not applied (another frame than the one on display, a click
    /// off the frame).
    rejected: u64,
    /// Distinct frames accepted.
    frames_accepted: u64,
    /// Of those, accepted without a correction.
    accepted_as_proposed: u64,
    /// From the frame's result to its acceptance, ms.
    time_to_accept_ms: Option<Spread>,
    /// Mean Dice of the corrected masks, when the run had ground truth.
    dice_after_correction: Option<f64>,
    /// Lines that could not be read (skipped, warned about).
    unreadable_lines: u64,
}

#[derive(Debug, Serialize)]
struct Spread {
    n: usize,
    p50: f64,
    p90: f64,
    max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Spread {
            n: v.len(),
            p50: at(0.5),
            p90: at(0.9),
            max: v[v.len() - 1],
        })
    }
}

#[derive(Deserialize)]
struct CorrectionLine {
    frame: u64,
    kind: String,
    #[serde(default)]
    points: Vec<serde_json::Value>,
    at_ms: f64,
    shown_ms: Option<f64>,
    rejected: Option<String>,
    dice: Option<f64>,
}

#[derive(Deserialize)]
struct ResultLine {
    review: Option<String>,
}

/// Each line of `path` parsed as `T`; an unreadable one is warned about
/// (file and line) and counted.
fn read_lines<T: for<'de> Deserialize<'de>>(
    path: &Path,
    unreadable: &mut u64,
    mut each: impl FnMut(T),
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(&line) {
            Ok(v) => each(v),
            Err(e) => {
                *unreadable += 1;
                log::warn!("{}:{}: skipped: {e}", path.display(), i + 1);
            }
        }
    }
    Ok(())
}

fn study(log: &Path) -> anyhow::Result<Study> {
    let (results, corrections): (Option<PathBuf>, Option<PathBuf>) = if log.is_dir() {
        let r = log.join("results.jsonl");
        let c = log.join("corrections.jsonl");
        if !r.is_file() && !c.is_file() {
            bail!(
                "{}: expected a `sammix run --out` folder (results.jsonl, corrections.jsonl) or a corrections.jsonl",
                log.display()
            );
        }
        (r.is_file().then_some(r), c.is_file().then_some(c))
    } else if log.is_file() {
        (None, Some(log.to_path_buf()))
    } else {
        bail!("{}: no such file or folder", log.display());
    };
    let mut s = Study {
        study: log.display().to_string(),
        ..Study::default()
    };
    if let Some(r) = &results {
        let (mut frames, mut flagged) = (0u64, 0u64);
        read_lines(r, &mut s.unreadable_lines, |l: ResultLine| {
            frames += 1;
            flagged += u64::from(l.review.is_some());
        })?;
        s.frames = Some(frames);
        s.flagged = Some(flagged);
    }
    let mut corrected = BTreeSet::new();
    let mut accepted = BTreeSet::new();
    let mut waits = Vec::new();
    let mut dice = Vec::new();
    if let Some(c) = &corrections {
        read_lines(c, &mut s.unreadable_lines, |l: CorrectionLine| {
            s.requests += 1;
            if l.rejected.is_some() {
                s.rejected += 1;
                return;
            }
            match l.kind.as_str() {
                "clicks" => {
                    s.corrections += 1;
                    s.clicks += l.points.len() as u64;
                    corrected.insert(l.frame);
                    dice.extend(l.dice);
                }
                "accept" => {
                    if accepted.insert(l.frame) {
                        if let Some(shown) = l.shown_ms {
                            waits.push((l.at_ms - shown).max(0.0));
                        }
                    }
                }
                other => log::warn!("{}: frame {}: unknown kind {other:?}", c.display(), l.frame),
            }
        })?;
    }
    s.frames_corrected = corrected.len() as u64;
    s.corrections_per_corrected_frame =
        (!corrected.is_empty()).then(|| s.corrections as f64 / corrected.len() as f64);
    s.frames_accepted = accepted.len() as u64;
    s.accepted_as_proposed = accepted.difference(&corrected).count() as u64;
    s.time_to_accept_ms = Spread::of(waits);
    s.dice_after_correction =
        (!dice.is_empty()).then(|| dice.iter().sum::<f64>() / dice.len() as f64);
    Ok(s)
}

pub fn kpi(args: KpiArgs) -> anyhow::Result<ExitCode> {
    let studies = args
        .logs
        .iter()
        .map(|l| study(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&studies)?);
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    outln!(
        "{:<32} {:>7} {:>7} {:>9} {:>11} {:>6} {:>9} {:>9} {:>14} {:>8}",
        "study",
        "frames",
        "flagged",
        "corrected",
        "corrections",
        "clicks",
        "accepted",
        "rejected",
        "accept p50 ms",
        "dice"
    );
    for s in &studies {
        outln!(
            "{:<32} {:>7} {:>7} {:>9} {:>11} {:>6} {:>9} {:>9} {:>14} {:>8}",
            s.study,
            opt(s.frames),
            opt(s.flagged),
            s.frames_corrected,
            s.corrections,
            s.clicks,
            s.frames_accepted,
            s.rejected,
            s.time_to_accept_ms
                .as_ref()
                .map_or("-".to_string(), |t| format!("{:.0}", t.p50)),
            s.dice_after_correction
                .map_or("-".to_string(), |d| format!("{d:.3}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}
