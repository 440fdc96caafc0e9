//! The element's properties: declared, set and read.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{lock, SammixFilter, CAT};
use crate::engine::default_bundle;
use crate::filter::{Decoder, Handoff, Toggle};
use crate::queue::Counters;

impl ObjectImpl for SammixFilter {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let counter = |name: &str, blurb: &str| {
                glib::ParamSpecUInt64::builder(name)
                    .nick(name)
                    .blurb(blurb)
                    .read_only()
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("bundle")
                    .nick("Bundle")
                    .blurb(
                        "Bundle folder (default: $SAMMIX_BUNDLE, else models/sammix-us-tiny \
                         under the current folder, else the source tree's, as `sammix run`); \
                         read when the element starts",
                    )
                    .build(),
                glib::ParamSpecBoolean::builder("overlay")
                    .nick("Overlay")
                    .blurb(
                        "Draw the mask, box and presence on processed frames (as sammix run's \
                         overlay); off: pixels pass untouched",
                    )
                    .default_value(true)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("decoder", Decoder::Native)
                    .nick("Decoder")
                    .blurb("Mask decoder, as sammix run --decoder; read when the element starts")
                    .build(),
                glib::ParamSpecEnum::builder_with_default("stability", Toggle::Auto)
                    .nick("Stability")
                    .blurb(
                        "Presence hysteresis (0.1), as sammix run --stability; auto: on with the \
                         newest-frame handoff; read when the element starts",
                    )
                    .build(),
                glib::ParamSpecEnum::builder_with_default("handoff", Handoff::Auto)
                    .nick("Handoff")
                    .blurb(
                        "Which frames are segmented: newest (never wait; frames inference has no \
                         time for pass unmarked), lossless (every frame), auto (newest for a live \
                         source)",
                    )
                    .build(),
                glib::ParamSpecString::builder("mask-dir")
                    .nick("Mask folder")
                    .blurb(
                        "Write each processed frame's mask there as NNNNNN.png (0/255, the \
                         frame's index), as sammix run --out's masks/; none by default",
                    )
                    .build(),
                counter("frames-in", "Buffers received since the element started"),
                counter("frames-processed", "Buffers pushed with a result"),
                counter(
                    "frames-unmarked",
                    "Buffers pushed without a result (no time for them, or their frame failed)",
                ),
                counter(
                    "frames-dropped",
                    "Buffers dropped because 512 items were queued behind the frame in inference",
                ),
                glib::ParamSpecUInt64::builder("inference-latency")
                    .nick("Inference latency")
                    .blurb("Latency this element adds (ns): the longest inference seen")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let path = |v: &glib::Value| {
            v.get::<Option<String>>()
                .ok()
                .flatten()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        };
        match pspec.name() {
            "bundle" => s.bundle = path(value),
            "mask-dir" => s.mask_dir = path(value),
            "overlay" => self
                .overlay
                .store(value.get().unwrap_or(true), Ordering::Relaxed),
            "decoder" => s.decoder = value.get().unwrap_or(Decoder::Native),
            "stability" => s.stability = value.get().unwrap_or(Toggle::Auto),
            "handoff" => s.handoff = value.get().unwrap_or(Handoff::Auto),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        let c = &self.counters;
        match pspec.name() {
            "bundle" => s
                .bundle
                .clone()
                .unwrap_or_else(default_bundle)
                .display()
                .to_string()
                .to_value(),
            "mask-dir" => s
                .mask_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "overlay" => self.overlay.load(Ordering::Relaxed).to_value(),
            "decoder" => s.decoder.to_value(),
            "stability" => s.stability.to_value(),
            "handoff" => s.handoff.to_value(),
            "frames-in" => Counters::get(&c.frames).to_value(),
            "frames-processed" => Counters::get(&c.processed).to_value(),
            "frames-unmarked" => Counters::get(&c.unmarked).to_value(),
            "frames-dropped" => Counters::get(&c.dropped).to_value(),
            "inference-latency" => self.latency_ns.load(Ordering::Relaxed).to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        // both pads exist from `with_class`; adding them cannot clash
        let _ = obj.add_pad(&self.sinkpad);
        let _ = obj.add_pad(&self.srcpad);
    }
}
