//! `sammix run`: a source through the pipeline, frame by frame, with
//! optional sinks and a summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::metrics::{ImageScores, Summary};
use sammix::overlay::{self, OverlayStyle};
use sammix::pipeline::{FrameResult, Outcome, StageTimes};
use sammix::source::SourceSpec;
use sammix::y4m::{Colorspace, Y4mWriter};
use serde::Serialize;

use super::common::{self, Stats, DEMO_CLIP, DEMO_MASKS};
use super::{OverlayFormat, RunArgs};

/// One line of `results.jsonl`.
#[derive(Serialize)]
struct Line<'a> {
    name: &'a str,
    /// Milliseconds from the start of the run to the frame being ready.
    ready_ms: f64,
    /// Milliseconds from the start of the run to its result.
    done_ms: f64,
    /// `done_ms − ready_ms`.
    latency_ms: f64,
    /// Frames dropped before this one (a file source drops none).
    dropped: u64,
    #[serde(flatten)]
    result: &'a FrameResult,
    dice: Option<f64>,
    iou: Option<f64>,
}

/// The end-of-run summary.
#[derive(Serialize)]
struct RunSummary {
    bundle: String,
    precision: String,
    source: String,
    frames: usize,
    wall_s: f64,
    fps: f64,
    dropped: u64,
    latency_ms: Stats,
    stage_ms: StageStats,
    segmented: usize,
    absent: usize,
    no_prompt: usize,
    /// Scores against the ground truth, when there is one.
    accuracy: Option<Summary>,
}

#[derive(Serialize, Default)]
struct StageStats {
    preprocess: Stats,
    classifier: Stats,
    prompt: Stats,
    encoder: Stats,
    decoder: Stats,
    postprocess: Stats,
}

/// Output files under `--out`.
struct Sinks {
    dir: PathBuf,
    results: BufWriter<File>,
    overlay: OverlayFormat,
    y4m: Option<Y4mWriter>,
    overlay_frame: Frame,
    style: OverlayStyle,
    rate: (u32, u32),
}

impl Sinks {
    fn create(dir: &Path, overlay: OverlayFormat, rate: (u32, u32)) -> anyhow::Result<Sinks> {
        std::fs::create_dir_all(dir.join("masks"))
            .with_context(|| format!("cannot create {}", dir.join("masks").display()))?;
        if overlay == OverlayFormat::Png {
            std::fs::create_dir_all(dir.join("overlay"))
                .with_context(|| format!("cannot create {}", dir.join("overlay").display()))?;
        }
        let path = dir.join("results.jsonl");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Sinks {
            dir: dir.to_path_buf(),
            results: BufWriter::new(file),
            overlay,
            y4m: None,
            overlay_frame: Frame::zeros(1, 1, PixelFormat::Rgb8),
            style: OverlayStyle::default(),
            rate,
        })
    }

    fn write(&mut self, frame: &Frame, mask: &Mask, line: &Line) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.results, line)?;
        self.results.write_all(b"\n")?;
        image_io::write_mask_png(
            &self.dir.join("masks").join(format!("{}.png", line.name)),
            mask,
        )?;
        if self.overlay == OverlayFormat::None {
            return Ok(());
        }
        let r = line.result;
        overlay::render(
            frame,
            mask,
            r.box_frame,
            r.presence,
            &self.style,
            &mut self.overlay_frame,
        );
        match self.overlay {
            OverlayFormat::Png => {
                let path = self.dir.join("overlay").join(format!("{}.png", line.name));
                image_io::write_frame_png(&path, &self.overlay_frame)?;
            }
            OverlayFormat::Y4m => {
                let (w, h) = (frame.width(), frame.height());
                if self.y4m.is_none() {
                    let path = self.dir.join("overlay.y4m");
                    self.y4m = Some(Y4mWriter::create(
                        &path,
                        w,
                        h,
                        self.rate,
                        Colorspace::Yuv444,
                    )?);
                }
                if let Some(y4m) = &mut self.y4m {
                    y4m.write_frame(&self.overlay_frame).with_context(|| {
                        format!(
                            "frame {} is {w}x{h}: one video needs one size; use --overlay png",
                            line.name
                        )
                    })?;
                }
            }
            OverlayFormat::None => {}
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.results.flush()?;
        if let Some(y4m) = self.y4m.take() {
            y4m.finish()?;
        }
        Ok(())
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (bundle, mut pipeline) = common::open(&args.bundle)?;
    let (spec, mut truth_dir) = match &args.source {
        Some(s) => (SourceSpec::parse(s)?, None),
        None => (
            SourceSpec::File(bundle.path_of(DEMO_CLIP)),
            Some(bundle.path_of(DEMO_MASKS)),
        ),
    };
    let mut source = spec.open()?;
    if let Some(t) = &args.truth {
        truth_dir = Some(t.clone());
    } else if truth_dir.is_none() {
        truth_dir = source.truth_dir();
    }
    let rate = source.frame_rate().unwrap_or((25, 1));
    let mut sinks = match &args.out {
        Some(dir) => Some(Sinks::create(dir, args.overlay, rate)?),
        None => None,
    };
    let verbose = !args.quiet && !args.json;
    if verbose {
        println!(
            "sammix run: {} ({}) on {}{}",
            bundle.manifest().name,
            common::precision(&bundle),
            spec,
            truth_dir
                .as_ref()
                .map_or(String::new(), |t| format!(", ground truth {}", t.display()))
        );
    }

    let limit = args.frames.unwrap_or(u64::MAX);
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut mask = Mask::zeros(1, 1);
    let mut latencies = Vec::new();
    let mut stages: Vec<StageTimes> = Vec::new();
    let mut scores = Vec::new();
    let mut outcomes = [0usize; 3];
    let threshold = bundle.manifest().gate.presence_threshold;
    let start = Instant::now();
    let mut count = 0u64;
    while count < limit {
        if !source.next_frame(&mut frame)? {
            break;
        }
        let ready = start.elapsed();
        let result = pipeline.process(&frame, &mut mask)?;
        let done = start.elapsed();
        count += 1;
        let name = source.frame_name(frame.sequence);
        let score = match &truth_dir {
            Some(dir) => {
                let path = dir.join(format!("{name}.png"));
                let gt = image_io::read_mask(&path).context("ground truth")?;
                let present = result.presence >= threshold;
                let s = ImageScores::new(name.clone(), &mask, &gt, Some(present))
                    .with_context(|| format!("ground truth {}", path.display()))?;
                Some(s)
            }
            None => None,
        };
        let latency = (done - ready).as_secs_f64() * 1e3;
        latencies.push(latency);
        stages.push(result.times);
        outcomes[match result.outcome {
            Outcome::Segmented => 0,
            Outcome::Absent => 1,
            Outcome::NoPrompt => 2,
        }] += 1;
        let line = Line {
            name: &name,
            ready_ms: ready.as_secs_f64() * 1e3,
            done_ms: done.as_secs_f64() * 1e3,
            latency_ms: latency,
            dropped: 0,
            result: &result,
            dice: score.as_ref().map(|s| s.dice),
            iou: score.as_ref().map(|s| s.iou),
        };
        if verbose {
            print_line(&line);
        }
        if let Some(s) = &mut sinks {
            s.write(&frame, &mask, &line)?;
        }
        scores.extend(score);
    }
    let wall = start.elapsed().as_secs_f64();
    if let Some(s) = sinks {
        s.finish()?;
    }
    if count == 0 {
        bail!("{spec}: no frames");
    }

    let ran = |f: fn(&StageTimes) -> f64| -> Stats {
        Stats::of(
            &stages
                .iter()
                .map(f)
                .filter(|&v| v > 0.0)
                .collect::<Vec<_>>(),
        )
    };
    let summary = RunSummary {
        bundle: bundle.dir().display().to_string(),
        precision: common::precision(&bundle),
        source: spec.to_string(),
        frames: count as usize,
        wall_s: wall,
        fps: count as f64 / wall,
        dropped: 0,
        latency_ms: Stats::of(&latencies),
        stage_ms: StageStats {
            preprocess: ran(|t| t.preprocess_ms),
            classifier: ran(|t| t.classifier_ms),
            prompt: ran(|t| t.prompt_ms),
            encoder: ran(|t| t.encoder_ms),
            decoder: ran(|t| t.decoder_ms),
            postprocess: ran(|t| t.postprocess_ms),
        },
        segmented: outcomes[0],
        absent: outcomes[1],
        no_prompt: outcomes[2],
        accuracy: (!scores.is_empty()).then(|| Summary::from_rows(&scores)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary, args.out.as_deref());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(l: &Line) {
    let r = l.result;
    let what = match r.outcome {
        Outcome::Segmented => "segmented",
        Outcome::Absent => "absent",
        Outcome::NoPrompt => "no prompt",
    };
    let mut text = format!("{:>6}  P {:.2}  {what:<9}", l.name, r.presence);
    if let Some(b) = r.box_frame {
        text += &format!(
            "  box {:>3.0},{:>3.0},{:>3.0},{:>3.0}  area {:>6}  iou~{:.2}",
            b[0],
            b[1],
            b[2],
            b[3],
            r.mask_area,
            r.iou_prediction.unwrap_or(f32::NAN)
        );
    } else {
        text += &" ".repeat(46);
    }
    text += &format!("  {:>6.1} ms", l.latency_ms);
    if let Some(d) = l.dice {
        text += &format!("  dice {d:.3}");
    }
    println!("{text}");
}

fn print_summary(s: &RunSummary, out: Option<&Path>) {
    let st = &s.stage_ms;
    println!();
    println!(
        "{} frames in {:.2} s: {:.1} FPS (one thread, frames processed one after another), {} dropped",
        s.frames, s.wall_s, s.fps, s.dropped
    );
    println!(
        "latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
        s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.p99, s.latency_ms.max
    );
    println!(
        "stage medians ms: preprocess {:.2}, classifier {:.1}, prompt {:.2}, encoder {:.1} ({}x), decoder {:.1}, postprocess {:.2}",
        st.preprocess.p50, st.classifier.p50, st.prompt.p50, st.encoder.p50, st.encoder.n, st.decoder.p50, st.postprocess.p50
    );
    println!(
        "outcomes: {} segmented, {} absent (gated before the encoder), {} without a prompt",
        s.segmented, s.absent, s.no_prompt
    );
    if let Some(a) = &s.accuracy {
        let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        println!(
            "vs ground truth: Dice {} on the {} frames with a target, {:.3} on all {} frames; IoU {}; HD95 {} px; presence accuracy {}",
            fmt(a.dice_positive),
            a.positive_frames,
            a.dice_all,
            a.frames,
            fmt(a.iou_positive),
            fmt(a.hd95_px),
            fmt(a.presence_accuracy)
        );
        println!("  (an empty mask on a frame without target scores Dice 1, a non-empty one 0)");
    }
    if let Some(dir) = out {
        println!(
            "wrote {}/results.jsonl, masks/ and the overlay",
            dir.display()
        );
    }
}
