//! The per-buffer result (`GstCustomMeta` `SammixMeta`) and the bus
//! messages: their structures are built here, from one frame's result.

use gst::glib;
use sammix::pipeline::{FrameResult, Outcome};

/// The name the meta is registered under (`gst_buffer_get_custom_meta`).
pub const META_NAME: &str = "SammixMeta";

/// Registers the meta; a copy of a buffer copies it, a transform that
/// changes the frame's size or orientation drops it (the mask and box are
/// in frame pixels).
pub fn register() {
    if gst::meta::CustomMeta::is_registered(META_NAME) {
        return;
    }
    let copy = glib::Quark::from_str("gst-copy");
    gst::meta::CustomMeta::register_with_transform(
        META_NAME,
        &["video", "size", "orientation"],
        move |dest, meta, _src, kind| {
            if kind != copy {
                return false;
            }
            match gst::meta::CustomMeta::add(dest, META_NAME) {
                Ok(mut m) => {
                    let s = m.mut_structure();
                    for (name, value) in meta.structure().iter() {
                        s.set_value(name, value.clone());
                    }
                    true
                }
                Err(_) => false,
            }
        },
    );
}

/// The outcome as the messages spell it (as `results.jsonl` does).
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Absent => "absent",
        Outcome::NoPrompt => "no_prompt",
        Outcome::Segmented => "segmented",
        Outcome::Invalid => "invalid",
    }
}

/// Fills `s` with the fields the meta and the message share.
pub fn fill(s: &mut gst::StructureRef, frame: u64, r: &FrameResult) {
    s.set("frame", frame);
    s.set("outcome", outcome_name(r.outcome));
    s.set("presence", f64::from(r.presence));
    s.set("area", r.mask_area as u64);
    if let Some(b) = r.box_frame {
        s.set("box", gst::Array::new(b.map(f64::from)));
    }
    if let Some(iou) = r.iou_prediction {
        s.set("iou", f64::from(iou));
    }
    if let Some(review) = &r.review {
        s.set("review", review.as_str());
    }
}

/// Attaches the result and `mask` (0/255 bytes, `width × height`) to
/// `buffer`.
pub fn attach(
    buffer: &mut gst::BufferRef,
    frame: u64,
    r: &FrameResult,
    mask: gst::Buffer,
    width: usize,
    height: usize,
) -> Result<(), glib::BoolError> {
    let mut meta = gst::meta::CustomMeta::add(buffer, META_NAME)?;
    let s = meta.mut_structure();
    fill(s, frame, r);
    s.set("mask", mask);
    s.set("mask-width", width as u32);
    s.set("mask-height", height as u32);
    Ok(())
}
