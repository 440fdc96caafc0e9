//! The element's implementation: properties, pads, the streaming thread's
//! side (chain, events, queries) and the source pad's task (inference and
//! pushing, in order). The pipeline is drawn in the crate's documentation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use sammix::pipeline::DecoderKind;

use super::{Decoder, Handoff, Toggle};
use crate::convert::FORMATS;
use crate::engine::{default_bundle, Engine};
use crate::queue::{Counters, Item, Queue, LOSSLESS_DEPTH, NEWEST_LIMIT};

mod properties;
mod task;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "sammix",
        gst::DebugColorFlags::empty(),
        Some("SAM-Mix segmentation"),
    )
});

/// What the properties set; read when the element starts (READY → PAUSED),
/// `overlay` at each frame.
#[derive(Debug, Clone)]
struct Settings {
    bundle: Option<PathBuf>,
    decoder: Decoder,
    stability: Toggle,
    handoff: Handoff,
    mask_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            bundle: None,
            decoder: Decoder::Native,
            stability: Toggle::Auto,
            handoff: Handoff::Auto,
            mask_dir: None,
        }
    }
}

/// The element.
pub struct SammixFilter {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    overlay: AtomicBool,
    queue: Queue,
    counters: Counters,
    /// Used by the source pad's task only (and by the state changes while
    /// the task is stopped).
    engine: Mutex<Option<Engine>>,
    /// The handoff in force: resolved at the first buffer, cleared at stop.
    mode: Mutex<Option<Handoff>>,
    /// The latency reported (ns), and the longest inference seen (ns).
    latency_ns: AtomicU64,
    /// When the first buffer came, for the summary's wall time.
    first: Mutex<Option<Instant>>,
    /// A drop for a full queue was reported (once per start).
    drop_reported: AtomicBool,
    /// The longest call of the chain function (µs) since the start.
    chain_max_us: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for SammixFilter {
    const NAME: &'static str = "GstSammix";
    type Type = super::SammixFilter;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sink = klass
            .pad_template("sink")
            .expect("the class has a sink template");
        let sinkpad = gst::Pad::builder_from_template(&sink)
            .chain_function(|pad, parent, buffer| {
                SammixFilter::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                SammixFilter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                SammixFilter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let src = klass
            .pad_template("src")
            .expect("the class has a src template");
        let srcpad = gst::Pad::builder_from_template(&src)
            .activatemode_function(|pad, parent, mode, active| {
                SammixFilter::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic activating the src pad")),
                    |imp| imp.src_activatemode(pad, mode, active),
                )
            })
            .query_function(|pad, parent, query| {
                SammixFilter::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        SammixFilter {
            sinkpad,
            srcpad,
            settings: Mutex::new(Settings::default()),
            overlay: AtomicBool::new(true),
            queue: Queue::default(),
            counters: Counters::default(),
            engine: Mutex::new(None),
            mode: Mutex::new(None),
            latency_ns: AtomicU64::new(0),
            first: Mutex::new(None),
            drop_reported: AtomicBool::new(false),
            chain_max_us: AtomicU64::new(0),
        }
    }
}

impl GstObjectImpl for SammixFilter {}

impl ElementImpl for SammixFilter {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "SAM-Mix segmentation",
                "Filter/Analyzer/Video",
                "Segments each frame with a SAM-Mix bundle: attaches mask, box, presence and \
                 predicted IoU (GstCustomMeta SammixMeta), posts them as `sammix` element \
                 messages, draws them; never makes upstream wait on inference in newest handoff",
                "sammix",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS)
                .build();
            [
                ("sink", gst::PadDirection::Sink),
                ("src", gst::PadDirection::Src),
            ]
            .into_iter()
            .filter_map(|(name, dir)| {
                gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok()
            })
            .collect()
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.start()?;
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            *lock(&self.engine) = None;
            *lock(&self.mode) = None;
        }
        Ok(ret)
    }
}

impl SammixFilter {
    /// Opens the bundle and warms the pipeline up; a failure is an error
    /// message naming the bundle.
    fn start(&self) -> Result<(), gst::StateChangeError> {
        let s = lock(&self.settings).clone();
        let dir = s.bundle.clone().unwrap_or_else(default_bundle);
        let decoder = match s.decoder {
            Decoder::Native => DecoderKind::Native,
            Decoder::Tract => DecoderKind::Tract,
        };
        let mut engine = match Engine::open(&dir, decoder, s.mask_dir.clone()) {
            Ok(e) => e,
            Err(e) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenRead,
                    ("cannot open bundle {}: {e}", dir.display())
                );
                return Err(gst::StateChangeError);
            }
        };
        let warm = engine.warm_up();
        gst::info!(
            CAT,
            imp = self,
            "bundle {} loaded ({:?} decoder); warm-up frame {:.1} ms",
            dir.display(),
            s.decoder,
            warm.as_secs_f64() * 1e3
        );
        self.latency_ns
            .store(warm.as_nanos() as u64, Ordering::Relaxed);
        *lock(&self.engine) = Some(engine);
        *lock(&self.mode) = None;
        *lock(&self.first) = None;
        self.counters.reset();
        self.drop_reported.store(false, Ordering::Relaxed);
        self.chain_max_us.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// The handoff in force; `auto` asks upstream's latency query once.
    fn mode(&self) -> Handoff {
        let mut mode = lock(&self.mode);
        if let Some(m) = *mode {
            return m;
        }
        let wanted = lock(&self.settings).handoff;
        let m = match wanted {
            Handoff::Auto => {
                let mut q = gst::query::Latency::new();
                let live = self.sinkpad.peer_query(&mut q) && q.result().0;
                if live {
                    Handoff::Newest
                } else {
                    Handoff::Lossless
                }
            }
            m => m,
        };
        gst::info!(CAT, imp = self, "handoff {m:?} (property {wanted:?})");
        *mode = Some(m);
        m
    }

    /// Queues the buffer; records how long the call took (the summary's
    /// `chain-max-us`: in newest handoff, what upstream ever waits).
    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let start = Instant::now();
        let ret = self.enqueue_buffer(buffer);
        let took = start.elapsed().as_micros() as u64;
        if took > 1000 {
            gst::debug!(CAT, imp = self, "a chain call took {took} µs");
        }
        self.chain_max_us.fetch_max(took, Ordering::Relaxed);
        ret
    }

    fn enqueue_buffer(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mode = self.mode();
        lock(&self.first).get_or_insert_with(Instant::now);
        let index = Counters::bump(&self.counters.frames);
        let mut q = self.queue.lock();
        loop {
            if q.flushing {
                return Err(gst::FlowError::Flushing);
            }
            q.flow?;
            if mode != Handoff::Lossless || q.items.len() < LOSSLESS_DEPTH {
                break;
            }
            q = self.queue.wait(q);
        }
        if mode == Handoff::Newest && q.items.len() >= NEWEST_LIMIT {
            drop(q);
            Counters::bump(&self.counters.dropped);
            if !self.drop_reported.swap(true, Ordering::Relaxed) {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Failed,
                    ("frame {index} dropped: {NEWEST_LIMIT} items queued behind the frame in inference (is downstream blocked?); later drops are counted in frames-dropped")
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        }
        let infer = mode == Handoff::Lossless || !q.in_inference;
        q.in_inference |= infer;
        q.items.push_back(Item::Buffer {
            buffer,
            infer,
            index,
        });
        drop(q);
        self.queue.notify();
        Ok(gst::FlowSuccess::Ok)
    }

    /// Queues a serialized event behind the buffers before it.
    fn enqueue_event(&self, event: gst::Event) -> bool {
        let mut q = self.queue.lock();
        if q.flushing {
            return false;
        }
        q.items.push_back(Item::Event(event));
        drop(q);
        self.queue.notify();
        true
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "event {event:?}");
        match event.view() {
            gst::EventView::FlushStart(_) => {
                self.queue.set_flushing(true);
                let ret = self.srcpad.push_event(event);
                let _ = self.srcpad.pause_task();
                ret
            }
            gst::EventView::FlushStop(_) => {
                let ret = self.srcpad.push_event(event);
                self.queue.set_flushing(false);
                if let Err(e) = self.start_task() {
                    gst::error!(CAT, imp = self, "cannot restart the task: {e}");
                    return false;
                }
                ret
            }
            gst::EventView::Caps(c) => {
                let caps = c.caps();
                if let Err(e) = gst_video::VideoInfo::from_caps(caps) {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::Negotiation,
                        ("caps {caps}: {e}: expected video/x-raw, GRAY8, RGB, NV12 or YUY2, with a size")
                    );
                    return false;
                }
                self.enqueue_event(event)
            }
            _ if event.is_serialized() => self.enqueue_event(event),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if query.is_serialized() {
            // answered in stream order: after what is queued has gone out
            let mut q = self.queue.lock();
            while !q.flushing && (!q.items.is_empty() || q.in_inference) {
                q = self.queue.wait(q);
            }
            if q.flushing {
                return false;
            }
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !self.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = gst::ClockTime::from_nseconds(self.latency_ns.load(Ordering::Relaxed));
            q.set(live, min + ours, max.map(|m| m + ours));
            gst::debug!(
                CAT,
                imp = self,
                "latency: upstream {min} (live {live}), ours {ours}"
            );
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_activatemode(
        &self,
        pad: &gst::Pad,
        mode: gst::PadMode,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        if mode != gst::PadMode::Push {
            return Err(gst::loggable_error!(CAT, "only push mode"));
        }
        if active {
            self.queue.set_flushing(false);
            self.start_task()
                .map_err(|e| gst::loggable_error!(CAT, "cannot start the task: {e}"))
        } else {
            self.queue.set_flushing(true);
            pad.stop_task()
                .map_err(|e| gst::loggable_error!(CAT, "cannot stop the task: {e}"))
        }
    }
}
