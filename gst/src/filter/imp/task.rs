//! The source pad's task: takes the queue's items in order, segments the
//! buffers marked for inference, pushes everything downstream, and posts
//! the messages.

use std::sync::atomic::Ordering;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{lock, SammixFilter, CAT};
use crate::engine::Done;
use crate::filter::{Handoff, Toggle};
use crate::meta;
use crate::queue::{Counters, Item};

impl SammixFilter {
    pub(super) fn start_task(&self) -> Result<(), glib::BoolError> {
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
        // as a queue does: an event refused downstream does not stop the
        // stream (an EOS refused while flushing, a tag nobody wants)
        let kind = event.type_();
        if !self.srcpad.push_event(event) {
            gst::debug!(CAT, imp = self, "event {kind:?} refused downstream");
        }
        Ok(gst::FlowSuccess::Ok)
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

    fn post_result(&self, index: u64, done: &Done) {
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
