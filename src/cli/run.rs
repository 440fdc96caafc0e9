//! `sammix run`: a source through the streaming pipeline, with optional
//! outputs, per-frame lines and a summary.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use sammix::backend::BackendKind;
use sammix::board::SystemdNotify;
use sammix::bundle::ClassifierInput;
use sammix::frame::{Frame, Mask};
use sammix::metrics::{ImageScores, RunningSummary, Summary};
use sammix::pipeline::{DecoderKind, Outcome, Stability};
use sammix::source::{ImageFolder, SourceSpec, Truth, Watched};
use sammix::stream::{
    self, CorrectionRecord, FileFeed, FrameRecord, FrameSink, Handoff, StreamOptions,
    StreamSummary, ThreadCores, WatchedSink,
};
use serde::Serialize;

use super::board::{self, BoardControls};
use super::common::{self, DEMO_CLIP, DEMO_MASKS};
use super::{RunArgs, Toggle};

mod files;

use files::Files;

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One line of `results.jsonl`.
#[derive(Serialize)]
struct Line<'a> {
    name: &'a str,
    #[serde(flatten)]
    record: &'a FrameRecord,
    dice: Option<f64>,
    iou: Option<f64>,
}

/// Frame names: an image folder's file stems, else the index.
enum Names {
    Index,
    Files(Vec<String>),
}

impl Names {
    fn get(&self, seq: u64) -> String {
        match self {
            Names::Files(v) => usize::try_from(seq)
                .ok()
                .and_then(|i| v.get(i))
                .cloned()
                .unwrap_or_else(|| format!("{seq:06}")),
            Names::Index => format!("{seq:06}"),
        }
    }
}

/// Frame-to-frame change of the masks, ours and the ground truth's.
#[derive(Default, Serialize)]
struct Flicker {
    /// Consecutive frame pairs compared.
    pairs: u64,
    /// Mean pixels that change between consecutive predicted masks.
    mask_change_px: f64,
    /// The same for the ground truth.
    truth_change_px: f64,
    /// Times the predicted presence (a non-empty mask) switched.
    presence_switches: u64,
    /// Times the ground truth's presence switched.
    truth_switches: u64,
}

/// The output thread's sink: printing, scoring, files.
struct CliSink {
    names: Names,
    verbose: bool,
    threshold: f32,
    truth: Option<Truth>,
    gt: Mask,
    scores: RunningSummary,
    files: Option<Files>,
    prev: Option<(u64, Mask, Mask)>,
    change: (u64, u64),
    flicker: Flicker,
    reused: u64,
    /// The last frame's sequence number and presence (a corrected overlay's label).
    last_presence: (u64, f32),
}

impl FrameSink for CliSink {
    fn frame(&mut self, frame: &Frame, mask: &Mask, record: &FrameRecord) -> SinkResult {
        let seq = record.result.sequence;
        self.reused += u64::from(record.result.embedding_reused);
        let name = self.names.get(seq);
        let mut score = None;
        if let Some(truth) = &self.truth {
            truth.load(&name, seq, &mut self.gt)?;
            let present = record.result.presence >= self.threshold;
            let s = ImageScores::new(name.as_str(), mask, &self.gt, Some(present))
                .map_err(|e| format!("ground truth of frame {name}: {e}"))?;
            self.scores.add(&s);
            score = Some(s);
            self.track_flicker(seq, mask);
        }
        let line = Line {
            name: &name,
            record,
            dice: score.as_ref().map(|s| s.dice),
            iou: score.as_ref().map(|s| s.iou),
        };
        if self.verbose {
            print_line(&line);
        }
        if let Some(f) = &mut self.files {
            f.write(frame, mask, &line)?;
        }
        self.last_presence = (seq, record.result.presence);
        Ok(())
    }

    fn correction(
        &mut self,
        record: &CorrectionRecord,
        corrected: Option<(&Frame, &Mask)>,
    ) -> SinkResult {
        let name = self.names.get(record.frame);
        let mut dice = None;
        if let (Some(truth), Some((_, mask))) = (&self.truth, corrected) {
            truth.load(&name, record.frame, &mut self.gt)?;
            dice = Some(
                sammix::metrics::dice(mask, &self.gt)
                    .map_err(|e| format!("ground truth of frame {name}: {e}"))?,
            );
        }
        let presence = match self.last_presence {
            (seq, p) if seq == record.frame => p,
            _ => f32::NAN,
        };
        let line = CorrectionLine {
            name: &name,
            record,
            presence,
            dice,
        };
        if self.verbose {
            match (&record.rejected, &record.correction) {
                (Some(why), _) => outln!("{name}  correction not applied: {why}"),
                (None, Some(c)) => outln!(
                    "{name}  corrected: {} click(s), area {} -> {}, {} decoder call(s), {:.1} ms{}",
                    c.clicks,
                    c.mask_area_before,
                    c.mask_area,
                    c.decoder_calls,
                    c.ms,
                    dice.map_or(String::new(), |d| format!(", dice {d:.3}"))
                ),
                (None, None) => outln!("{name}  accepted"),
            }
        }
        if let Some(f) = &mut self.files {
            f.write_correction(&line, corrected);
        }
        Ok(())
    }

    fn finish(&mut self) -> SinkResult {
        if let Some(f) = &mut self.files {
            f.finish()?;
        }
        Ok(())
    }
}

/// One line of `corrections.jsonl`: the frame's name, the record, and the
/// corrected mask's Dice when there is ground truth.
#[derive(Serialize)]
struct CorrectionLine<'a> {
    name: &'a str,
    #[serde(flatten)]
    record: &'a CorrectionRecord,
    #[serde(skip)]
    presence: f32,
    dice: Option<f64>,
}

impl CliSink {
    fn track_flicker(&mut self, seq: u64, mask: &Mask) {
        let differ = |a: &Mask, b: &Mask| {
            a.data()
                .iter()
                .zip(b.data())
                .filter(|(x, y)| x != y)
                .count() as u64
        };
        if let Some((prev_seq, prev_mask, prev_gt)) = &mut self.prev {
            if *prev_seq + 1 == seq && prev_mask.data().len() == mask.data().len() {
                self.flicker.pairs += 1;
                self.change.0 += differ(prev_mask, mask);
                self.change.1 += differ(prev_gt, &self.gt);
                self.flicker.presence_switches +=
                    u64::from(prev_mask.is_empty() != mask.is_empty());
                self.flicker.truth_switches += u64::from(prev_gt.is_empty() != self.gt.is_empty());
            }
            *prev_seq = seq;
            prev_mask.clone_from(mask);
            prev_gt.clone_from(&self.gt);
        } else {
            self.prev = Some((seq, mask.clone(), self.gt.clone()));
        }
        if self.flicker.pairs > 0 {
            self.flicker.mask_change_px = self.change.0 as f64 / self.flicker.pairs as f64;
            self.flicker.truth_change_px = self.change.1 as f64 / self.flicker.pairs as f64;
        }
    }
}

#[derive(Serialize)]
struct RunSummary<'a> {
    bundle: String,
    precision: String,
    decoder: DecoderKind,
    /// The backend that ran the encoder (at the end of the stream).
    encoder_backend: BackendKind,
    /// The same in words (`CPU (tract)`).
    encoder_backend_name: String,
    /// Why the CPU ran the encoder instead of the backend asked for (it
    /// could not start, or was lost on a frame).
    encoder_fallback: Option<String>,
    source: String,
    handoff: &'static str,
    stability: bool,
    reuse_embedding: Option<f32>,
    overlap: bool,
    /// A corrections file was followed (`--corrections`).
    corrections: bool,
    /// What the classifier reads (`graphs.classifier.input`): with
    /// `image_embeddings`, absent frames ran the encoder too.
    classifier_input: ClassifierInput,
    /// Frames whose encoder run was skipped.
    embeddings_reused: u64,
    #[serde(flatten)]
    stream: &'a StreamSummary,
    accuracy: Option<Summary>,
    flicker: Option<&'a Flicker>,
    /// With `--out`: frames with an output file not written (disk full, a
    /// read-only file system), and the first such error.
    output_not_written: Option<u64>,
    output_first_error: Option<String>,
}

/// A flag that SIGTERM (`systemctl stop`) and SIGINT (Ctrl-C) raise, so
/// that the stream ends cleanly: the summary is printed, the LEDs go out
/// and the hardware watchdog is disarmed (killed outright, the process
/// would leave it armed and the board would reset). A second signal exits
/// at once, with the shell's 128 + signal status.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .with_context(|| format!("installing the handler of signal {sig}"))?;
    }
    Ok(stop)
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (bundle, mut pipeline) =
        common::open(&args.bundle, args.decoder.decoder.into(), &args.backend)?;
    let (spec, default_truth) = match &args.source {
        Some(s) => (SourceSpec::parse(s)?, None),
        None => (
            SourceSpec::File(bundle.path_of(DEMO_CLIP)),
            Some(Truth::Folder(bundle.path_of(DEMO_MASKS))),
        ),
    };
    // A clip or a camera delivers what the bundle takes (gray8 or rgb8).
    let mut source = spec.open_as(bundle.manifest().input.color.pixel_format())?;
    let truth = match &args.truth {
        Some(t) => Some(Truth::Folder(t.clone())),
        None => default_truth.or_else(|| source.truth()),
    };
    let names = match &spec {
        SourceSpec::Images(dir) => Names::Files(
            ImageFolder::open(dir)?
                .files()
                .iter()
                .map(|p| {
                    p.file_stem()
                        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
                })
                .collect(),
        ),
        _ => Names::Index,
    };
    let rate = source.frame_rate().unwrap_or((25, 1));
    // A capture device paces itself; files and the phantom are paced at
    // their frame rate when played live.
    let device = matches!(spec, SourceSpec::V4l(_));
    let live = args.realtime || device || matches!(spec, SourceSpec::Synthetic(_));
    let mut opts = StreamOptions {
        handoff: if live {
            Handoff::Newest
        } else {
            Handoff::Lossless
        },
        max_frames: args.frames,
        pace: (live && !device)
            .then(|| Duration::from_secs_f64(f64::from(rate.1.max(1)) / f64::from(rate.0.max(1)))),
        ..StreamOptions::default()
    };
    // A read that never returns would hold the stream (its threads are
    // scoped) past the stall timeout: every source but a folder of images
    // (whose frames are named by file) is read on a thread of its own and
    // given up at the stall timeout.
    if !matches!(spec, SourceSpec::Images(_)) {
        source = Box::new(Watched::new(source, spec.to_string(), opts.stall_timeout)?);
    }
    let stability = match args.stability {
        Toggle::On => true,
        Toggle::Off => false,
        Toggle::Auto => live,
    };
    if !(0.0..=0.5).contains(&args.hysteresis) || !(0.0..1.0).contains(&args.box_smoothing) {
        bail!("--hysteresis must be in [0, 0.5] and --box-smoothing in [0, 1)");
    }
    pipeline.set_stability(stability.then_some(Stability {
        hysteresis: args.hysteresis,
        box_smoothing: args.box_smoothing,
    }));
    if args.reuse_embedding.is_some_and(|t| t.is_nan() || t <= 0.0) {
        bail!("--reuse-embedding must be a positive difference");
    }
    pipeline.set_embedding_reuse(args.reuse_embedding);
    // Kept alive until the stream ends; dropping it stops the file's reader.
    let feed = match &args.corrections {
        Some(path) => {
            let feed = FileFeed::watch(path, Duration::from_millis(50)).with_context(|| {
                format!("cannot follow the corrections file {}", path.display())
            })?;
            opts.corrections = Some(feed.queue());
            Some(feed)
        }
        None => None,
    };
    // Frames of a clip, a device or the synthetic source follow each other;
    // a folder of images need not.
    pipeline.set_agreement(!matches!(spec, SourceSpec::Images(_)));
    let overlap = match args.overlap {
        Toggle::On => true,
        Toggle::Off => false,
        Toggle::Auto => std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
    };
    pipeline.set_overlap(overlap);
    // Ignored when the classifier reads the image embeddings.
    let overlap = pipeline.overlap();
    let verbose = !args.quiet && !args.json;
    if verbose {
        let truth_text = match &truth {
            Some(Truth::Folder(d)) => format!(", ground truth {}", d.display()),
            Some(Truth::Synthetic(_)) => ", exact ground truth".to_string(),
            None => String::new(),
        };
        outln!(
            "sammix run: {} ({}, {} decoder, encoder on {}) on {spec}{truth_text}{}",
            bundle.manifest().name,
            common::precision(&bundle),
            pipeline.decoder(),
            pipeline.encoder_backend_name(),
            if live {
                ", live: newest frame wins"
            } else {
                ""
            }
        );
    }
    let controls_choice = match args.controls {
        Toggle::On => Some(true),
        Toggle::Off => Some(false),
        Toggle::Auto => None,
    };
    if controls_choice == Some(false) && args.watchdog.is_some() {
        bail!("--watchdog needs the board controls (--controls off was given)");
    }
    let profile = sammix::board::profile::current();
    // Under systemd (`Type=notify`): started once the bundle is loaded and
    // the source is open; `WatchdogSec=` is fed with the hardware watchdog.
    let systemd = SystemdNotify::from_env().context("systemd notification socket")?;
    if let Some(n) = &systemd {
        n.ready()
            .with_context(|| format!("READY=1 to NOTIFY_SOCKET={}", n.name()))?;
    }
    let systemd_watchdog = systemd
        .as_ref()
        .is_some_and(|n| n.watchdog_period().is_some());
    let controls = if board::wanted(
        controls_choice,
        profile,
        args.watchdog.as_deref(),
        systemd_watchdog,
    ) {
        Some(BoardControls::start(
            profile,
            args.watchdog.clone(),
            systemd,
        )?)
    } else {
        if systemd_watchdog {
            log::warn!("systemd's WatchdogSec= is not fed: --controls off was given");
        }
        None
    };
    opts.pause = controls.as_ref().map(BoardControls::pause_flag);
    let stop = stop_on_signals()?;
    opts.stop = Some(Arc::clone(&stop));
    let pin = match args.pin_threads {
        Toggle::On => true,
        Toggle::Off => false,
        Toggle::Auto => profile.name != "host",
    };
    opts.cores = pin.then(|| {
        let cores = |c: &[u16]| c.iter().map(|&c| usize::from(c)).collect();
        ThreadCores {
            capture: cores(&profile.threads.capture),
            inference: cores(&profile.threads.inference),
            output: cores(&profile.threads.output),
        }
    });
    let sink = CliSink {
        names,
        verbose,
        threshold: bundle.manifest().gate.presence_threshold,
        truth,
        gt: Mask::zeros(1, 1),
        scores: RunningSummary::default(),
        files: match &args.out {
            Some(dir) => Some(Files::create(dir, args.overlay, rate)?),
            None => None,
        },
        prev: None,
        change: (0, 0),
        flicker: Flicker::default(),
        reused: 0,
        last_presence: (u64::MAX, f32::NAN),
    };
    // A write that never returns (a dead SD card, a share that stopped
    // answering) would hold the stream past the stall timeout, as a read
    // would: the sink is written on a thread of its own, given up at the
    // stall timeout.
    let output_name = match &args.out {
        Some(dir) => format!("the output to {}", dir.display()),
        None => "the output (standard output)".to_string(),
    };
    let mut sink = WatchedSink::new(sink, output_name, opts.stall_timeout)
        .context("cannot start the output's writer thread")?;
    let streamed = match &controls {
        Some(c) => {
            if verbose {
                outln!("controls: {}", c.description);
            }
            stream::run(
                source.as_mut(),
                &mut pipeline,
                &mut c.wrap(&mut sink),
                &opts,
            )
        }
        None => stream::run(source.as_mut(), &mut pipeline, &mut sink, &opts),
    };
    if let Some(c) = controls {
        c.finish(streamed.is_ok())?;
    }
    drop(feed);
    let summary = streamed?;
    let Some(sink) = sink.into_inner() else {
        bail!(
            "the output's writer thread ended without giving its results back (a bug: see the log)"
        );
    };
    if stop.load(Ordering::Acquire) {
        log::info!("stopped by a signal after {} frames", summary.frames);
    }
    if summary.frames == 0 {
        bail!("{spec}: no frames");
    }
    let report = RunSummary {
        bundle: bundle.dir().display().to_string(),
        precision: common::precision(&bundle),
        decoder: pipeline.decoder(),
        encoder_backend: pipeline.encoder_backend(),
        encoder_backend_name: pipeline.encoder_backend_name().to_string(),
        encoder_fallback: pipeline.encoder_fallback().map(str::to_string),
        source: spec.to_string(),
        handoff: if live { "newest" } else { "lossless" },
        stability,
        reuse_embedding: args.reuse_embedding,
        overlap,
        corrections: args.corrections.is_some(),
        classifier_input: bundle.manifest().graphs.classifier_input,
        embeddings_reused: sink.reused,
        stream: &summary,
        accuracy: sink.truth.is_some().then(|| sink.scores.summary()),
        flicker: sink.truth.is_some().then_some(&sink.flicker),
        output_not_written: sink.files.as_ref().map(|f| f.failures),
        output_first_error: sink.files.as_ref().and_then(|f| f.first_failure.clone()),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report, args.out.as_deref());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(l: &Line) {
    let r = &l.record.result;
    let what = match r.outcome {
        Outcome::Segmented => "segmented",
        Outcome::Absent => "absent",
        Outcome::NoPrompt => "no prompt",
        Outcome::Invalid => "invalid",
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
    text += &format!("  {:>6.1} ms", l.record.latency_ms);
    if let Some(d) = l.dice {
        text += &format!("  dice {d:.3}");
    }
    outln!("{text}");
}

fn print_summary(r: &RunSummary, out: Option<&Path>) {
    let s = r.stream;
    let st = &s.stage_ms;
    outln!();
    outln!(
        "{} frames in {:.2} s: {:.1} FPS; dropped {} at the source, {} at capture, {} at output ({} handoff)",
        s.frames,
        s.wall_s,
        s.fps,
        s.dropped_source,
        s.dropped_capture,
        s.dropped_output,
        r.handoff
    );
    if s.out_of_order > 0 {
        outln!(
            "{} frames came out of order from the source (a repeated or earlier sequence number): dropped",
            s.out_of_order
        );
    }
    if s.frozen > 0 {
        outln!(
            "{} frames captured while the display was frozen (not processed)",
            s.frozen
        );
    }
    outln!(
        "latency capture→result ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1} (queue wait p50 {:.1})",
        s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.p99, s.latency_ms.max, s.queue_ms.p50
    );
    outln!(
        "stage ms p50/p99: preprocess {:.2}/{:.2}, classifier {:.1}/{:.1}, prompt {:.2}/{:.2}, encoder {:.1}/{:.1} ({}x), decoder {:.1}/{:.1}, postprocess {:.2}/{:.2}",
        st.preprocess.p50, st.preprocess.p99, st.classifier.p50, st.classifier.p99, st.prompt.p50, st.prompt.p99,
        st.encoder.p50, st.encoder.p99, st.encoder.n, st.decoder.p50, st.decoder.p99, st.postprocess.p50, st.postprocess.p99
    );
    outln!(
        "outcomes: {} segmented, {} absent (gated {} the encoder), {} without a prompt; {} flagged for review; stability {}; encoder overlap {}",
        s.segmented,
        s.absent,
        match r.classifier_input {
            ClassifierInput::Image => "before",
            ClassifierInput::ImageEmbeddings => "after",
        },
        s.no_prompt,
        s.review,
        if r.stability { "on" } else { "off" },
        if r.overlap {
            "on (encoder ms: the wait beyond the classifier)"
        } else {
            "off"
        }
    );
    if let Some(why) = &r.encoder_fallback {
        outln!("encoder on the {}: {why}", r.encoder_backend_name);
    }
    if r.corrections {
        outln!(
            "corrections: {} applied, {} frames accepted, {} not applied (see the log)",
            s.corrections,
            s.accepted,
            s.corrections_rejected
        );
    }
    if s.invalid > 0 {
        outln!(
            "invalid: {} frames (a graph output held NaN or Inf; no decision, empty mask)",
            s.invalid
        );
    }
    if let Some(t) = r.reuse_embedding {
        outln!(
            "embedding reuse (difference < {t}): encoder skipped on {} frames",
            r.embeddings_reused
        );
    }
    if let Some(kb) = s.peak_rss_kb {
        outln!("peak memory (RSS): {:.1} MB", kb as f64 / 1024.0);
    }
    if let Some(a) = &r.accuracy {
        let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        outln!(
            "vs ground truth: Dice {} on the {} frames with a target, {:.3} on all {} frames; IoU {}; HD95 {} px; presence accuracy {}",
            fmt(a.dice_positive),
            a.positive_frames,
            a.dice_all,
            a.frames,
            fmt(a.iou_positive),
            fmt(a.hd95_px),
            fmt(a.presence_accuracy)
        );
        outln!("  (an empty mask on a frame without target scores Dice 1, a non-empty one 0)");
    }
    if let Some(f) = r.flicker {
        outln!(
            "flicker: masks change by {:.0} px per frame (ground truth {:.0}); presence switched {} times (ground truth {})",
            f.mask_change_px, f.truth_change_px, f.presence_switches, f.truth_switches
        );
    }
    if let Some(dir) = out {
        outln!(
            "wrote {}/results.jsonl, masks/ and the overlay",
            dir.display()
        );
    }
    if let (Some(n @ 1..), Some(e)) = (r.output_not_written, &r.output_first_error) {
        outln!("output: {n} frames not (wholly) written; first error: {e}");
    }
}
