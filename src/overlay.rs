//! The overlay a clinician sees: the frame with the target drawn on it.
//!
//! [`render`] turns a frame (grayscale or RGB) into an RGB picture with
//!
//! - the target tinted (an alpha blend of [`OverlayStyle::tint`]) and
//!   outlined (mask pixels with a 4-neighbour outside the mask or off the
//!   image, 1 px wide, 2 px on frames wider than [`THICK_OUTLINE_ABOVE`]);
//! - the prompt box as a 1-px rectangle, clipped to the frame;
//! - the presence probability in the top-left corner (`P 0.87`, followed
//!   by ` -` when the mask is empty and ` !` when the frame is flagged for
//!   review), in a built-in 5×7 bitmap font on a dark box, doubled on
//!   frames at least [`LARGE_TEXT_FROM`] pixels wide;
//! - a frame flagged for review (the confidence flag,
//!   [`FrameResult::review`](crate::pipeline::FrameResult::review)) framed
//!   by a border of [`OverlayStyle::review`], [`REVIEW_BORDER`] px wide
//!   (doubled with the text).
//!
//! The output frame is reshaped in place, so a warm loop that passes the
//! same `out` every time never allocates. Nothing here panics on odd input:
//! a mask of another size is sampled (nearest neighbour) at the frame's
//! pixels, a box with a NaN, an infinity or inverted corners is not drawn.
//!
//! ```
//! use sammix::frame::{Frame, Mask, PixelFormat};
//! use sammix::overlay::{render, OverlayStyle};
//!
//! let frame = Frame::zeros(64, 48, PixelFormat::Gray8);
//! let mut mask = Mask::zeros(64, 48);
//! mask.data_mut()[20 * 64 + 30] = 1;
//! let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
//! render(&frame, &mask, Some([10.0, 10.0, 40.0, 30.0]), 0.87, false, &OverlayStyle::default(), &mut out);
//! assert_eq!((out.width(), out.height(), out.format()), (64, 48, PixelFormat::Rgb8));
//! ```

use crate::frame::{Frame, Mask, PixelFormat};

mod font;

/// Frames wider than this get a 2-px outline instead of 1 px.
pub const THICK_OUTLINE_ABOVE: usize = 512;

/// Frames at least this wide get the label at twice the font size.
pub const LARGE_TEXT_FROM: usize = 256;

/// The review border's width in pixels (doubled on frames at least
/// [`LARGE_TEXT_FROM`] wide).
pub const REVIEW_BORDER: usize = 3;

/// Colours of the overlay, as RGB bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayStyle {
    /// The colour blended over the target's pixels.
    pub tint: [u8; 3],
    /// How much of [`OverlayStyle::tint`] the blend takes, 0 (none) to 1
    /// (solid); values outside are clamped, NaN counts as 0.
    pub tint_alpha: f32,
    /// The target's outline.
    pub outline: [u8; 3],
    /// The prompt box.
    pub bbox: [u8; 3],
    /// The label's glyphs.
    pub text: [u8; 3],
    /// The box behind the label.
    pub text_background: [u8; 3],
    /// The border of a frame flagged for review.
    pub review: [u8; 3],
}

impl Default for OverlayStyle {
    /// Green target, yellow box, white on black label: all read well on a
    /// grayscale ultrasound image.
    fn default() -> OverlayStyle {
        OverlayStyle {
            tint: [0, 200, 0],
            tint_alpha: 0.35,
            outline: [0, 255, 0],
            bbox: [255, 220, 0],
            text: [255, 255, 255],
            text_background: [0, 0, 0],
            review: [255, 140, 0],
        }
    }
}

/// Draws `mask`, `bbox` (x0, y0, x1, y1 in frame pixels, inclusive) and
/// the `presence` probability over `frame` into `out`, which becomes an
/// [`PixelFormat::Rgb8`] frame of `frame`'s size with its sequence number
/// and capture time; a frame to `review` gets a border and a ` !`.
pub fn render(
    frame: &Frame,
    mask: &Mask,
    bbox: Option<[f32; 4]>,
    presence: f32,
    review: bool,
    style: &OverlayStyle,
    out: &mut Frame,
) {
    let (w, h) = (frame.width(), frame.height());
    out.reset(w, h, PixelFormat::Rgb8);
    out.sequence = frame.sequence;
    out.captured = frame.captured;
    copy_as_rgb(frame, out.data_mut());
    let view = MaskView::new(mask, w, h);
    if !view.is_empty() {
        draw_target(&view, style, out);
    }
    if let Some(b) = bbox {
        draw_box(out, b, style.bbox);
    }
    let scale = if w >= LARGE_TEXT_FROM { 2 } else { 1 };
    if review {
        draw_border(out, REVIEW_BORDER * scale, style.review);
    }
    let mut buf = [0u8; font::LABEL_CAPACITY];
    let label = font::label(presence, view.is_empty(), review, &mut buf);
    font::draw_label(out, label, scale, style.text, style.text_background);
}

/// Copies the frame's pixels into `rgb`, replicating gray.
fn copy_as_rgb(frame: &Frame, rgb: &mut [u8]) {
    match frame.format() {
        PixelFormat::Gray8 => {
            for (px, &g) in rgb.chunks_exact_mut(3).zip(frame.data()) {
                px.fill(g);
            }
        }
        PixelFormat::Rgb8 => {
            for (o, &v) in rgb.iter_mut().zip(frame.data()) {
                *o = v;
            }
        }
    }
}

/// A mask seen at the frame's resolution (nearest neighbour when the sizes
/// differ); pixels off the frame are background.
struct MaskView<'a> {
    mask: &'a Mask,
    width: usize,
    height: usize,
}

impl<'a> MaskView<'a> {
    fn new(mask: &'a Mask, width: usize, height: usize) -> MaskView<'a> {
        MaskView {
            mask,
            width,
            height,
        }
    }

    fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0 || self.mask.is_empty()
    }

    /// Whether frame pixel (x, y) is target; false off the frame.
    fn at(&self, x: isize, y: isize) -> bool {
        let (Ok(x), Ok(y)) = (usize::try_from(x), usize::try_from(y)) else {
            return false;
        };
        if x >= self.width || y >= self.height {
            return false;
        }
        let (mw, mh) = (self.mask.width(), self.mask.height());
        let (mx, my) = if (mw, mh) == (self.width, self.height) {
            (x, y)
        } else {
            (x * mw / self.width, y * mh / self.height)
        };
        self.mask.data().get(my * mw + mx).is_some_and(|&b| b != 0)
    }
}

/// Tints the target's pixels and paints its outline.
fn draw_target(view: &MaskView<'_>, style: &OverlayStyle, out: &mut Frame) {
    let thickness: isize = if view.width > THICK_OUTLINE_ABOVE {
        2
    } else {
        1
    };
    let alpha = if style.tint_alpha.is_nan() {
        0
    } else {
        (style.tint_alpha.clamp(0.0, 1.0) * 256.0).round() as u16
    };
    let w = view.width;
    let data = out.data_mut();
    for y in 0..view.height {
        for x in 0..w {
            let (xi, yi) = (x as isize, y as isize);
            if !view.at(xi, yi) {
                continue;
            }
            let edge = (1..=thickness).any(|d| {
                !view.at(xi - d, yi)
                    || !view.at(xi + d, yi)
                    || !view.at(xi, yi - d)
                    || !view.at(xi, yi + d)
            });
            let i = (y * w + x) * 3;
            let Some(px) = data.get_mut(i..i + 3) else {
                continue;
            };
            if edge {
                px.copy_from_slice(&style.outline);
            } else {
                for (v, &c) in px.iter_mut().zip(&style.tint) {
                    let mixed = u16::from(*v) * (256 - alpha) + u16::from(c) * alpha + 128;
                    *v = (mixed >> 8) as u8;
                }
            }
        }
    }
}

/// Paints pixel (x, y) of an RGB frame, if it is on the frame.
fn put(out: &mut Frame, x: usize, y: usize, colour: [u8; 3]) {
    if x >= out.width() || y >= out.height() {
        return;
    }
    let i = (y * out.width() + x) * 3;
    if let Some(px) = out.data_mut().get_mut(i..i + 3) {
        px.copy_from_slice(&colour);
    }
}

/// Draws the 1-px rectangle `[x0, y0, x1, y1]` (inclusive, rounded to
/// whole pixels), clipped to the frame; ignores non-finite or inverted
/// boxes and boxes wholly off the frame.
fn draw_box(out: &mut Frame, b: [f32; 4], colour: [u8; 3]) {
    let [x0, y0, x1, y1] = b;
    if !b.iter().all(|v| v.is_finite()) || x1 < x0 || y1 < y0 {
        return;
    }
    let (w, h) = (out.width() as i64, out.height() as i64);
    // `as` saturates, so huge coordinates are safe.
    let (x0, y0, x1, y1) = (
        x0.round() as i64,
        y0.round() as i64,
        x1.round() as i64,
        y1.round() as i64,
    );
    if x1 < 0 || y1 < 0 || x0 >= w || y0 >= h {
        return;
    }
    let (x0, y0) = (x0.max(0) as usize, y0.max(0) as usize);
    let (x1, y1) = (x1.min(w - 1) as usize, y1.min(h - 1) as usize);
    for x in x0..=x1 {
        put(out, x, y0, colour);
        put(out, x, y1, colour);
    }
    for y in y0..=y1 {
        put(out, x0, y, colour);
        put(out, x1, y, colour);
    }
}

/// A `width`-px border along the frame's edges.
fn draw_border(out: &mut Frame, width: usize, colour: [u8; 3]) {
    let (w, h) = (out.width(), out.height());
    for y in 0..h {
        let edge_row = y < width || y + width >= h;
        for x in 0..w {
            if edge_row || x < width || x + width >= w {
                put(out, x, y, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests;
