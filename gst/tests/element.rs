//! The element in pipelines built here (the plugin registered statically):
//! the meta on each processed buffer, the messages, the overlay property,
//! and a bundle that is not there.

use std::sync::{Arc, Mutex, Once};

use gst::prelude::*;

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gst::init().expect("GStreamer initializes");
        gstsammix::plugin_register_static().expect("the plugin registers");
    });
}

fn bundle() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/sammix-us-tiny").to_string()
}

/// Runs `description` to EOS; returns the bus's element messages and the
/// first error, if any.
fn run(pipeline: &gst::Pipeline) -> (Vec<gst::Structure>, Option<String>) {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut messages = Vec::new();
    let mut error = None;
    if pipeline.set_state(gst::State::Playing).is_ok() {
        for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        messages.push(s.to_owned());
                    }
                }
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    error = Some(e.error().to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    if error.is_none() {
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                error = Some(e.error().to_string());
            }
        }
    }
    pipeline.set_state(gst::State::Null).expect("back to NULL");
    (messages, error)
}

fn pipeline(format: &str, overlay: bool) -> (gst::Pipeline, gst::Element) {
    let text = format!(
        "videotestsrc num-buffers=6 pattern=ball ! video/x-raw,format={format},width=200,height=150 ! \
         sammix name=s bundle={} overlay={overlay} ! fakesink",
        bundle()
    );
    let p = gst::parse::launch(&text)
        .expect("the description parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let s = p.by_name("s").expect("the element is there");
    (p, s)
}

/// Checksums of the buffers going into and out of the element, by PTS.
type Sums = Arc<Mutex<Vec<(Option<gst::ClockTime>, u64)>>>;

fn checksum_probe(pad: &gst::Pad) -> Sums {
    let sums: Sums = Arc::default();
    let out = Arc::clone(&sums);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer() {
            let map = b.map_readable().expect("readable");
            let sum = map
                .iter()
                .fold(0u64, |h, &v| h.wrapping_mul(31).wrapping_add(u64::from(v)));
            out.lock().unwrap().push((b.pts(), sum));
        }
        gst::PadProbeReturn::Ok
    });
    sums
}

#[test]
fn every_processed_buffer_carries_the_result_and_its_mask() {
    init();
    let (p, s) = pipeline("NV12", true);
    let metas = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&metas);
    s.static_pad("src")
        .expect("src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(b) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let meta = gst::meta::CustomMeta::from_buffer(b, "SammixMeta")
                .expect("each buffer of a file-like source is processed");
            let st = meta.structure();
            let mask = st.get::<gst::Buffer>("mask").expect("mask");
            let map = mask.map_readable().expect("mask readable");
            let (w, h) = (
                st.get::<u32>("mask-width").unwrap(),
                st.get::<u32>("mask-height").unwrap(),
            );
            assert_eq!((w, h), (200, 150));
            assert_eq!(map.len(), 200 * 150);
            assert!(map.iter().all(|&v| v == 0 || v == 255));
            let ones = map.iter().filter(|&&v| v == 255).count() as u64;
            assert_eq!(st.get::<u64>("area").unwrap(), ones);
            let outcome = st.get::<String>("outcome").unwrap();
            assert_eq!(outcome == "segmented", st.has_field("iou"));
            let p = st.get::<f64>("presence").unwrap();
            assert!((0.0..=1.0).contains(&p));
            seen.lock().unwrap().push(st.get::<u64>("frame").unwrap());
            gst::PadProbeReturn::Ok
        });
    let (messages, error) = run(&p);
    assert_eq!(error, None);
    assert_eq!(*metas.lock().unwrap(), (0..6).collect::<Vec<u64>>());
    let frames: Vec<u64> = messages
        .iter()
        .filter(|m| m.name() == "sammix")
        .map(|m| m.get::<u64>("frame").unwrap())
        .collect();
    assert_eq!(frames, (0..6).collect::<Vec<u64>>());
    let summary = messages
        .iter()
        .find(|m| m.name() == "sammix-summary")
        .expect("a summary at EOS");
    assert_eq!(summary.get::<u64>("processed").unwrap(), 6);
    assert_eq!(summary.get::<String>("handoff").unwrap(), "lossless");
    assert_eq!(s.property::<u64>("frames-processed"), 6);
}

#[test]
fn the_overlay_changes_pixels_and_without_it_they_pass_untouched() {
    init();
    for format in ["GRAY8", "RGB", "NV12", "YUY2"] {
        for overlay in [true, false] {
            let (p, s) = pipeline(format, overlay);
            let before = checksum_probe(&s.static_pad("sink").unwrap());
            let after = checksum_probe(&s.static_pad("src").unwrap());
            let (_, error) = run(&p);
            assert_eq!(error, None, "{format}");
            let (before, after) = (before.lock().unwrap(), after.lock().unwrap());
            assert_eq!(before.len(), 6, "{format}");
            assert_eq!(after.len(), 6, "{format}");
            for (b, a) in before.iter().zip(after.iter()) {
                assert_eq!(b.0, a.0, "{format}: order kept");
                // the presence label is drawn on every processed frame
                assert_eq!(b.1 != a.1, overlay, "{format} overlay={overlay}");
            }
        }
    }
}

#[test]
fn a_bundle_that_is_not_there_is_an_error_naming_it() {
    init();
    let p = gst::parse::launch(
        "videotestsrc num-buffers=1 ! sammix bundle=/nonexistent/bundle-x ! fakesink",
    )
    .expect("parses")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let (_, error) = run(&p);
    let error = error.expect("an error");
    assert!(error.contains("/nonexistent/bundle-x"), "{error}");
}

#[test]
fn a_flushing_seek_mid_stream_neither_hangs_nor_loses_the_end() {
    init();
    let text = format!(
        "videotestsrc num-buffers=20 ! video/x-raw,format=GRAY8,width=160,height=120,framerate=10/1 ! \
         sammix name=s bundle={} ! fakesink sync=false",
        bundle()
    );
    let p = gst::parse::launch(&text)
        .expect("parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    p.set_state(gst::State::Paused).expect("pauses");
    let (ok, _, _) = p.state(gst::ClockTime::from_seconds(60));
    ok.expect("prerolls");
    // while the first frames are queued or in inference
    p.seek_simple(
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::ClockTime::from_seconds(1),
    )
    .expect("seeks");
    let (messages, error) = run(&p);
    assert_eq!(error, None);
    let summary = messages
        .iter()
        .find(|m| m.name() == "sammix-summary")
        .expect("EOS came through after the seek");
    let frames = summary.get::<u64>("frames").unwrap();
    let done = summary.get::<u64>("processed").unwrap() + summary.get::<u64>("unmarked").unwrap();
    // every buffer that came in before or after the flush was pushed or
    // flushed away; the ones after the seek all went through
    assert!(done <= frames && done >= 10, "{frames} in, {done} out");
}
