//! `sammix eval`: a folder of images and masks through the pipeline, scored.

use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::metrics::{ImageScores, Summary};
use sammix::pipeline::DecoderKind;
use sammix::source::{FrameSource, ImageFolder};
use serde::Serialize;

use super::common;
use super::EvalArgs;

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
    data: String,
    conventions: &'static str,
    summary: Summary,
    images: &'a [ImageScores],
}

pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (bundle, mut pipeline) = common::open(&args.bundle, args.decoder.decoder.into())?;
    let images = args.data.join("images");
    let masks = args.data.join("masks");
    if !images.is_dir() || !masks.is_dir() {
        bail!(
            "{}: expected a folder holding images/ and masks/ (PNG files of the same names)",
            args.data.display()
        );
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
        let row = ImageScores::new(stem, &mask, &gt, Some(result.presence >= threshold))
            .with_context(|| format!("{} against {}", file.display(), gt_path.display()))?;
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = Report {
        bundle: bundle.dir().display().to_string(),
        precision: common::precision(&bundle),
        decoder: pipeline.decoder(),
        data: args.data.display().to_string(),
        conventions: CONVENTIONS,
        summary: Summary::from_rows(&rows),
        images: &rows,
    };
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    outln!("{text}");
    Ok(ExitCode::SUCCESS)
}
