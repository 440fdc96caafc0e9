//! The element's implementation: properties, pads, the streaming thread's
//! side (chain, events, queries) and the source pad's task (inference and
//! pushing, in order). The pipeline is drawn in the crate's documentation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use sammix::pipeline::DecoderKind;

use super::{Decoder, Handoff, Toggle};
use crate::convert::FORMATS;
use crate::engine::{default_bundle, Engine};
use crate::meta;
use crate::queue::{Counters, Item, Queue, LOSSLESS_DEPTH, NEWEST_LIMIT};

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
        self.chain_max_us
            .fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
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

    fn start_task(&self) -> Result<(), glib::BoolError> {
        let element = self.obj().downgrade();
        self.srcpad.start_task(move || match element.upgrade() {
            Some(e) => e.imp().iterate(),
            None => std::thread::sleep(Duration::from_millis(10)),
        })
    }

    /// One turn of the task: the next item out, in order.
    fn iterate(&self) {
        let item = {
            let mut q = self.queue.lock();
            loop {
                if q.flushing {
                    drop(q);
                    let _ = self.srcpad.pause_task();
                    return;
                }
                if let Some(item) = q.items.pop_front() {
                    break item;
                }
                q = self.queue.wait(q);
            }
        };
        self.queue.notify();
        let flow = match item {
            Item::Event(event) => self.forward_event(event),
            Item::Buffer {
                buffer,
                infer,
                index,
            } => {
                let buffer = if infer {
                    let b = self.infer(buffer, index);
                    self.queue.lock().in_inference = false;
                    self.queue.notify();
                    b
                } else {
                    Counters::bump(&self.counters.unmarked);
                    buffer
                };
                self.srcpad.push(buffer)
            }
        };
        if let Err(e) = flow {
            let mut q = self.queue.lock();
            q.flow = Err(e);
            drop(q);
            self.queue.notify();
            if !matches!(e, gst::FlowError::Flushing | gst::FlowError::Eos) {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("streaming stopped, reason {e:?}")
                );
                let _ = self.srcpad.push_event(gst::event::Eos::new());
            }
            let _ = self.srcpad.pause_task();
        }
    }

    /// Sends a queued event on; the caps go to the engine first, EOS posts
    /// the summary first.
    fn forward_event(&self, event: gst::Event) -> Result<gst::FlowSuccess, gst::FlowError> {
        match event.view() {
            gst::EventView::Caps(c) => {
                if let (Ok(info), Some(engine)) = (
                    gst_video::VideoInfo::from_caps(c.caps()),
                    lock(&self.engine).as_mut(),
                ) {
                    engine.set_caps(info);
                }
            }
            gst::EventView::Eos(_) => self.post_summary(),
            _ => {}
        }
        if self.srcpad.push_event(event) {
            Ok(gst::FlowSuccess::Ok)
        } else {
            // as a queue does: a refused event does not stop the stream
            Ok(gst::FlowSuccess::Ok)
        }
    }

    /// Runs one buffer through the engine; a failure is a warning and the
    /// buffer passes unmarked.
    fn infer(&self, buffer: gst::Buffer, index: u64) -> gst::Buffer {
        let draw = self.overlay.load(Ordering::Relaxed);
        let mode = lock(&self.mode).unwrap_or(Handoff::Lossless);
        let stability = lock(&self.settings).stability;
        let mut guard = lock(&self.engine);
        let Some(engine) = guard.as_mut() else {
            Counters::bump(&self.counters.unmarked);
            return buffer;
        };
        engine.ensure_stability(match stability {
            Toggle::On => true,
            Toggle::Off => false,
            Toggle::Auto => mode == Handoff::Newest,
        });
        match engine.process(buffer, index, draw) {
            Ok(done) => {
                drop(guard);
                Counters::bump(&self.counters.processed);
                if let Some(w) = &done.warning {
                    gst::element_imp_warning!(self, gst::StreamError::Failed, ("{w}"));
                }
                self.post_result(index, &done);
                self.track_latency(done.inference);
                done.buffer
            }
            Err((buffer, why)) => {
                drop(guard);
                Counters::bump(&self.counters.unmarked);
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Decode,
                    ("{why}: the frame passes unmarked")
                );
                buffer
            }
        }
    }

    fn post_result(&self, index: u64, done: &crate::engine::Done) {
        let mut s = gst::Structure::new_empty("sammix");
        meta::fill(&mut s, index, &done.result);
        if let Some(pts) = done.buffer.pts() {
            s.set("pts", pts);
        }
        s.set("inference-ms", done.inference.as_secs_f64() * 1e3);
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    /// Raises the reported latency when an inference took more than 10%
    /// above it, and asks the pipeline to redistribute latency.
    fn track_latency(&self, took: Duration) {
        let took = took.as_nanos() as u64;
        let reported = self.latency_ns.load(Ordering::Relaxed);
        if took > reported + reported / 10 {
            self.latency_ns.store(took, Ordering::Relaxed);
            gst::debug!(CAT, imp = self, "latency raised to {took} ns");
            let obj = self.obj();
            let _ = obj.post_message(gst::message::Latency::builder().src(&*obj).build());
        }
    }

    /// `sammix-summary` on the bus at EOS: the counters and the time since
    /// the first buffer.
    fn post_summary(&self) {
        let c = &self.counters;
        let wall = lock(&self.first).map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3);
        let s = gst::Structure::builder("sammix-summary")
            .field("frames", Counters::get(&c.frames))
            .field("processed", Counters::get(&c.processed))
            .field("unmarked", Counters::get(&c.unmarked))
            .field("dropped", Counters::get(&c.dropped))
            .field("wall-ms", wall)
            .field("chain-max-us", self.chain_max_us.load(Ordering::Relaxed))
            .field(
                "handoff",
                match *lock(&self.mode) {
                    Some(Handoff::Newest) => "newest",
                    _ => "lossless",
                },
            )
            .build();
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }
}
