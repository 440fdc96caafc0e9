//! Heap allocations per frame in a warm stream, counted by a global
//! allocator. One test function only: the counter is process-wide, and
//! tests running side by side would count each other's allocations.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sammix::bundle::{Bundle, GraphRole};

#[path = "common/threshold.rs"]
mod threshold;
use sammix::decoder::NativeDecoder;
use sammix::pipeline::{DecoderKind, Pipeline};
use sammix::source::{FrameSource, SourceSpec, Watched};
use sammix::stream::{self, Handoff, Processor, StreamOptions, WatchedSink};
use threshold::Threshold;

#[path = "common/counting.rs"]
mod counting;
use counting::{Window, ALLOCATIONS};

/// Allocations per frame between frames `from` and `to`, and how many of
/// those frames were segmented.
fn per_frame(processor: &mut dyn Processor, from: u64, to: u64, handoff: Handoff) -> (f64, u64) {
    per_frame_from(
        SourceSpec::Synthetic(5).open().unwrap(),
        processor,
        from,
        to,
        handoff,
    )
}

fn per_frame_from(
    source: Box<dyn FrameSource>,
    processor: &mut dyn Processor,
    from: u64,
    to: u64,
    handoff: Handoff,
) -> (f64, u64) {
    per_frame_through(source, processor, from, to, handoff, false)
}

/// The same, the sink written through a [`WatchedSink`] when `watched_sink`.
fn per_frame_through(
    mut source: Box<dyn FrameSource>,
    processor: &mut dyn Processor,
    from: u64,
    to: u64,
    handoff: Handoff,
    watched_sink: bool,
) -> (f64, u64) {
    let mut window = Window::new(from, to);
    let opts = StreamOptions {
        handoff,
        max_frames: Some(to + 1),
        stall_timeout: Duration::from_secs(30),
        ..StreamOptions::default()
    };
    let summary = if watched_sink {
        let mut w = WatchedSink::new(window, "window", Duration::from_secs(30)).unwrap();
        let s = stream::run(source.as_mut(), processor, &mut w, &opts).unwrap();
        window = w.into_inner().unwrap();
        s
    } else {
        stream::run(source.as_mut(), processor, &mut window, &opts).unwrap()
    };
    assert!(summary.frames > to);
    let n = window.allocations() as f64 / (to - from) as f64;
    (n, window.segmented)
}

/// Allocations of `f` run `times` times.
fn allocations(times: usize, mut f: impl FnMut()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..times {
        f();
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn a_warm_stream_allocates_nothing_per_frame() {
    // The stream itself (capture thread, synthetic source, frame pool,
    // hand-off, output queue, statistics): zero, over 300 frames.
    let (stream_only, _) = per_frame(&mut Threshold(Duration::ZERO), 50, 350, Handoff::Lossless);
    assert_eq!(
        stream_only, 0.0,
        "allocations per frame in the stream's own code"
    );
    // The same with the source read on a thread of its own, as `sammix run`
    // reads every source but a folder of images (`Watched`).
    let watched = Watched::new(
        SourceSpec::Synthetic(5).open().unwrap(),
        "synthetic:5",
        Duration::from_secs(30),
    )
    .unwrap();
    let (watched_only, _) = per_frame_from(
        Box::new(watched),
        &mut Threshold(Duration::ZERO),
        50,
        350,
        Handoff::Lossless,
    );
    assert_eq!(watched_only, 0.0, "allocations per frame through Watched");
    // And with the sink written on a thread of its own, as `sammix run`
    // writes (`WatchedSink`: each result copied into buffers that go back
    // and forth).
    let (watched_sink_only, _) = per_frame_through(
        SourceSpec::Synthetic(5).open().unwrap(),
        &mut Threshold(Duration::ZERO),
        50,
        350,
        Handoff::Lossless,
        true,
    );
    assert_eq!(
        watched_sink_only, 0.0,
        "allocations per frame through WatchedSink"
    );

    // The native decoder alone, warm: zero per call.
    let bundle =
        Bundle::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch"))
            .unwrap();
    let mut decoder = NativeDecoder::from_onnx(bundle.graph_path(GraphRole::Decoder)).unwrap();
    let (e, m) = (decoder.embedding_size(), decoder.mask_count());
    let embeddings: Vec<f32> = (0..decoder.embed_dim() * e * e)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let s = decoder.input_size();
    let coords = [0.2 * s, 0.3 * s, 0.7 * s, 0.8 * s];
    let dense = vec![-8.0; 16 * e * e];
    let (mut low, mut iou) = (vec![0.0; m * 16 * e * e], vec![0.0; m]);
    let mut call = || {
        decoder
            .run(
                &embeddings,
                &coords,
                &[2.0, 3.0],
                &dense,
                1.0,
                &mut low,
                &mut iou,
            )
            .unwrap();
    };
    call();
    assert_eq!(allocations(5, call), 0, "the native decoder allocates");

    // With the whole pipeline: tract allocates its tensors per run of the
    // classifier and encoder (and of the decoder with the tract decoder).
    // Not zero (yet), but constant: a warm pipeline streaming the same
    // frames again (same seed) allocates no more than it did the first time.
    // The window must hold segmented frames, or the decoder is not in it.
    let mut per_kind = Vec::new();
    for kind in DecoderKind::ALL {
        let mut pipeline = Pipeline::with_decoder(&bundle, kind).unwrap();
        let (early, seg) = per_frame(&mut pipeline, 5, 25, Handoff::Lossless);
        let (late, seg_late) = per_frame(&mut pipeline, 5, 25, Handoff::Lossless);
        eprintln!(
            "{kind} decoder: {early:.0} allocations per frame (frames 5-25, {seg} segmented), \
             {late:.0} when streamed again"
        );
        assert!(seg > 0, "{kind}: no segmented frame");
        assert_eq!(seg, seg_late, "{kind}: the same frames were not segmented");
        assert!(early > 0.0);
        assert!(
            (late - early).abs() <= 0.05 * early,
            "{kind}: allocations per frame grow: {early} -> {late}"
        );
        per_kind.push((early, seg));
    }
    // Both saw the same frames (the synthetic source is seeded): the native
    // pipeline allocates less, by the tract decoder's allocations.
    let ((native, seg_native), (tract, seg_tract)) = (per_kind[0], per_kind[1]);
    assert_eq!(seg_native, seg_tract);
    assert!(
        native < tract,
        "native {native} vs tract {tract} allocations per frame"
    );
}
