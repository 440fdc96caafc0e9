//! The encoder's backend: a backend lost mid-stream (its `run` fails after
//! it has worked, as a removed device or a driver error would) hands the
//! encoder to the CPU for the rest of the stream, whose masks then equal a
//! CPU-only run's; a required one stops the stream with an error naming
//! it; and a build without the GPU backend (no `gpu` feature) falls back or refuses as
//! asked. The failing backend is a test's, plugged in through the trait.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sammix::backend::{BackendError, BackendKind, StageBackend, TractCpu};
use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask};
use sammix::pipeline::{Outcome, Pipeline, PipelineError};
use sammix::source::SourceSpec;
use sammix::stream::{self, FrameRecord, FrameSink, StreamError, StreamOptions, StreamSummary};

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Frames of the demo clip streamed in each test (the target is in
/// frames 0, 16, 17, 21 and 27 on).
const FRAMES: u64 = 40;

fn bundle() -> Bundle {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch");
    Bundle::open(dir).unwrap()
}

/// How the test backend fails.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `run` returns a device error.
    Error,
    /// `run` leaves the embeddings six values long.
    WrongShape,
}

/// A "GPU" that is tract underneath (so its embeddings are the CPU's) and
/// fails from its `fail_from`-th run (1-based) on.
#[derive(Debug)]
struct Failing {
    cpu: TractCpu,
    fail_from: u64,
    fault: Fault,
    runs: Arc<AtomicU64>,
}

impl StageBackend for Failing {
    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }

    fn name(&self) -> &str {
        "gpu (test)"
    }

    fn run(&mut self, input: &[f32], outputs: &mut [Vec<f32>]) -> Result<(), BackendError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if n < self.fail_from {
            return self.cpu.run(input, outputs);
        }
        match self.fault {
            Fault::Error => Err(BackendError::Device {
                detail: "device removed (test)".into(),
            }),
            Fault::WrongShape => {
                outputs[0].truncate(6);
                Ok(())
            }
        }
    }
}

/// Keeps each frame's mask and outcome.
#[derive(Default)]
struct Collect {
    frames: Vec<(u64, Outcome, Vec<u8>)>,
}

impl FrameSink for Collect {
    fn frame(&mut self, _frame: &Frame, mask: &Mask, record: &FrameRecord) -> SinkResult {
        let r = &record.result;
        self.frames
            .push((r.sequence, r.outcome, mask.data().to_vec()));
        Ok(())
    }
}

/// Streams the first [`FRAMES`] frames of the demo clip through `pipeline`.
fn stream(
    bundle: &Bundle,
    pipeline: &mut Pipeline,
) -> (Result<StreamSummary, StreamError>, Collect) {
    let clip = SourceSpec::File(bundle.path_of("demo/clip.y4m"));
    let mut sink = Collect::default();
    let opts = StreamOptions {
        max_frames: Some(FRAMES),
        ..StreamOptions::default()
    };
    let done = stream::run(clip.open().unwrap().as_mut(), pipeline, &mut sink, &opts);
    (done, sink)
}

/// A pipeline whose encoder runs on a [`Failing`] backend; its run counter.
fn failing(
    bundle: &Bundle,
    fail_from: u64,
    fault: Fault,
    required_by: Option<&str>,
    overlap: bool,
) -> (Pipeline, Arc<AtomicU64>) {
    let mut pipeline = Pipeline::new(bundle).unwrap();
    pipeline.set_overlap(overlap);
    let runs = Arc::new(AtomicU64::new(0));
    let backend = Failing {
        cpu: TractCpu::new(&pipeline.graphs().encoder).unwrap(),
        fail_from,
        fault,
        runs: Arc::clone(&runs),
    };
    pipeline.set_encoder_backend(Box::new(backend), required_by.map(str::to_string));
    assert_eq!(pipeline.encoder_backend(), BackendKind::Gpu);
    (pipeline, runs)
}

#[test]
fn a_lost_backend_hands_the_encoder_to_the_cpu_and_the_masks_stay_the_cpus() {
    let bundle = bundle();
    let mut cpu = Pipeline::new(&bundle).unwrap();
    let (done, want) = stream(&bundle, &mut cpu);
    assert_eq!(done.unwrap().frames, FRAMES);
    let segmented: Vec<u64> = want
        .frames
        .iter()
        .filter(|f| f.1 == Outcome::Segmented)
        .map(|f| f.0)
        .collect();
    assert!(
        segmented.len() >= 4,
        "the test needs segmented frames: {segmented:?}"
    );
    assert_eq!(cpu.encoder_backend(), BackendKind::Cpu);
    assert_eq!(cpu.encoder_fallback(), None);

    for (fault, overlap) in [
        (Fault::Error, false),
        (Fault::Error, true),
        (Fault::WrongShape, false),
    ] {
        let (mut pipeline, runs) = failing(&bundle, 3, fault, None, overlap);
        let (done, got) = stream(&bundle, &mut pipeline);
        let summary = done.unwrap_or_else(|e| panic!("{fault:?}, overlap {overlap}: {e}"));
        assert_eq!(summary.frames, FRAMES, "{fault:?}, overlap {overlap}");
        // It ran twice, failed once, and was not called again.
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "{fault:?}, overlap {overlap}"
        );
        assert_eq!(pipeline.encoder_backend(), BackendKind::Cpu);
        let why = pipeline.encoder_fallback().unwrap();
        assert!(
            why.starts_with("gpu (test) lost on frame "),
            "{fault:?}: {why}"
        );
        match fault {
            Fault::Error => assert!(why.ends_with(": device removed (test)"), "{why}"),
            Fault::WrongShape => assert!(why.contains("gave 6 image_embeddings values"), "{why}"),
        }
        // Every frame as the CPU made it: before, at and after the loss.
        assert_eq!(got.frames.len(), want.frames.len());
        for (g, w) in got.frames.iter().zip(&want.frames) {
            assert_eq!((g.0, g.1), (w.0, w.1), "{fault:?}, overlap {overlap}");
            assert!(g.2 == w.2, "frame {}: mask differs from the CPU's", g.0);
        }
        let lost_on: u64 = why["gpu (test) lost on frame ".len()..]
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            segmented.iter().filter(|&&s| s > lost_on).count() >= 2,
            "frames after the loss (frame {lost_on}) went through the decoder"
        );
    }
}

#[test]
fn a_required_backend_lost_stops_the_stream_with_its_name() {
    let bundle = bundle();
    let by = "`backend.required = true` in board profile test";
    let (mut pipeline, runs) = failing(&bundle, 3, Fault::Error, Some(by), false);
    let (done, got) = stream(&bundle, &mut pipeline);
    let err = done.unwrap_err();
    assert!(
        matches!(
            err,
            StreamError::Pipeline(PipelineError::BackendRequired { .. })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("encoder backend gpu (test): lost on frame "),
        "{text}"
    );
    assert!(text.contains(": device removed (test); required by `backend.required = true` in board profile test, so the encoder does not fall back to the CPU"), "{text}");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    // The frames before the loss came out; none after.
    assert!(!got.frames.is_empty() && (got.frames.len() as u64) < FRAMES);
    assert_eq!(pipeline.encoder_backend(), BackendKind::Gpu);
}

#[cfg(not(feature = "gpu"))]
#[test]
fn this_build_has_no_gpu_the_cpu_stands_in_unless_required() {
    use sammix::backend::{BackendChoice, BackendRequest};

    let bundle = bundle();
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    for choice in [BackendChoice::Gpu, BackendChoice::Auto] {
        let request = BackendRequest {
            choice,
            required_by: None,
        };
        pipeline.select_encoder_backend(&request).unwrap();
        assert_eq!(pipeline.encoder_backend(), BackendKind::Cpu);
        assert_eq!(pipeline.encoder_backend_name(), "CPU (tract)");
        let why = pipeline.encoder_fallback().unwrap();
        assert!(
            why.starts_with("gpu cannot start: not built into this binary"),
            "{why}"
        );
    }
    pipeline
        .select_encoder_backend(&BackendRequest::cpu())
        .unwrap();
    assert_eq!(pipeline.encoder_fallback(), None);

    let request = BackendRequest {
        choice: BackendChoice::Gpu,
        required_by: Some("`backend.required = true` in board profile rk3588".into()),
    };
    let err = pipeline.select_encoder_backend(&request).unwrap_err();
    assert_eq!(
        err.to_string(),
        "encoder backend gpu: cannot start: not built into this binary (this binary was built \
         without the GPU backend (cargo build --features gpu: Vulkan through wgpu)); required by \
         `backend.required = true` in board profile rk3588, so the encoder does not fall back \
         to the CPU"
    );
    // `auto` is never required.
    let request = BackendRequest {
        choice: BackendChoice::Auto,
        ..request
    };
    pipeline.select_encoder_backend(&request).unwrap();
    assert_eq!(pipeline.encoder_backend(), BackendKind::Cpu);
}
