//! The GStreamer element `sammix`: segments each video frame with a SAM-Mix
//! bundle and attaches the result to the buffer.
//!
//! ```text
//!            streaming thread (upstream's)          srcpad task (ours)
//!  sinkpad ─► chain: mark the buffer for       ─► ordered queue ─► take the front item:
//!             inference or not (newest: only       (buffers and      an event: push it;
//!             when no frame is in inference;        serialized        a buffer to infer: map, convert,
//!             lossless: every frame), enqueue,      events)           Pipeline::process, attach the
//!             return at once                                          meta, draw, post the message;
//!                                                                     push it downstream ─► srcpad
//! ```
//!
//! - **Formats**: `video/x-raw`, `GRAY8`, `RGB`, `NV12` or `YUY2`, any size,
//!   any stride; output caps are the input caps. The frame the library gets
//!   is made by the V4L2 source's converters (`sammix::source::v4l::convert`)
//!   in the format the bundle takes (its `input.color`): for a `gray`
//!   bundle, whatever its channel count, the luma plane byte for byte (RGB:
//!   BT.601 luma); for an `rgb` one RGB through the caps' colour matrix and
//!   range.
//! - **Handoff** (`handoff`): `lossless` processes every frame (upstream
//!   waits when four frames are queued: a file runs as fast as inference,
//!   masks equal `sammix run`'s); `newest` never makes upstream wait on
//!   inference: a frame is taken for inference only when none is in
//!   inference, the others pass through unmarked and counted
//!   (`frames-unmarked`), in order, behind the frame in inference, so each
//!   buffer is delayed by at most one inference. `auto` (the default) asks
//!   upstream's latency query at the first buffer: a live source gets
//!   `newest`, anything else `lossless`, as `sammix run` treats capture
//!   devices and files.
//! - **Result**: a processed buffer carries a `GstCustomMeta` named
//!   `SammixMeta` whose structure (`sammix`) holds `frame` (u64, the
//!   buffer's index since the element started), `outcome` (string:
//!   `segmented`, `absent`, `no_prompt`, `invalid`), `presence` (f64),
//!   `area` (u64, mask pixels), `box` (four f64 `x0, y0, x1, y1` in frame
//!   pixels, inclusive; only when there is a box), `iou` (f64, the
//!   decoder's predicted IoU; only when segmented), `review` (string, when
//!   the bundle flags the frame), `mask` (a `GstBuffer` of `mask-width ×
//!   mask-height` bytes, 0 or 255, rows packed). The same fields but the
//!   mask go to the bus as an element message named `sammix` (with `pts`
//!   and `inference-ms`); at EOS a message `sammix-summary` counts the
//!   frames. Copying a buffer copies the meta; scaling or rotating drops it
//!   (tags `video`, `size`, `orientation`).
//! - **Overlay** (`overlay`, on by default): the mask, box and presence
//!   drawn as `sammix run`'s overlay (`sammix::overlay`), written back only
//!   where the overlay changed a pixel (luma for `GRAY8`, BT.601 YCbCr in
//!   the caps' range for `NV12`/`YUY2`); off: pixels pass untouched.
//! - **Latency**: the element adds the longest inference it has seen (a
//!   warm-up frame at start, then each frame; when one takes more than 10%
//!   above what was reported, a latency message asks the pipeline to ask
//!   again) to the minimum and maximum latency of upstream's answer.
//! - **Errors**: a bundle that cannot be opened fails the state change with
//!   an error naming the folder and the problem; caps this element cannot
//!   read are refused with a message naming them; a frame that fails (or a
//!   panic inside the library) is a warning and passes unmarked.
//! - **Memory**: once warm, the element's own per-frame work reuses its
//!   buffers (frame, mask, overlay picture, a pool of mask buffers); the
//!   meta's and the message's structures are GStreamer allocations per
//!   frame, and tract allocates while it runs a graph.

use gst::glib;

mod convert;
mod engine;
mod filter;
mod meta;
mod queue;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    filter::register(plugin)
}

/// Registers the plugin in this process (for an application that links
/// the crate instead of loading `libgstsammix.so`, and for the tests).
pub use registration::plugin_desc::plugin_register_static;

/// The plugin's descriptor and entry points (`gst_plugin_sammix_get_desc`),
/// as the macro makes them.
#[allow(missing_docs)]
mod registration {
    use super::plugin_init;

    gst::plugin_define!(
        sammix,
        env!("CARGO_PKG_DESCRIPTION"),
        plugin_init,
        env!("CARGO_PKG_VERSION"),
        "Proprietary",
        env!("CARGO_PKG_NAME"),
        "sammix",
        "the sammix source tree"
    );
}
