//! A tiny 5×7 bitmap font and the presence label drawn with it.

use super::put;
use crate::frame::Frame;

/// Glyph size in font pixels.
const GLYPH_W: usize = 5;
const GLYPH_H: usize = 7;
/// Font pixels between glyphs, and between the text and its box's edge.
const SPACING: usize = 1;
const PADDING: usize = 2;

/// The longest label: `P 0.87 - !`.
pub(super) const LABEL_CAPACITY: usize = 10;

/// The rows of a glyph, top to bottom; bit 4 is the leftmost column.
/// Characters without a glyph are drawn blank.
fn glyph(c: u8) -> [u8; GLYPH_H] {
    match c {
        b'0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        b'1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        b'2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        b'3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        b'4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        b'5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        b'6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        b'7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        b'8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        b'9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        b'.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        b'!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04],
        b'-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        b'%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        b'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        b'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        b'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        _ => [0; GLYPH_H],
    }
}

/// Writes the label for `presence` into `buf`: `P 0.87` (the probability
/// clamped to [0, 1], two decimals), `P NA` for NaN, followed by ` -` when
/// `absent` (no target drawn) and ` !` when flagged for `review`.
pub(super) fn label(
    presence: f32,
    absent: bool,
    review: bool,
    buf: &mut [u8; LABEL_CAPACITY],
) -> &[u8] {
    buf[..2].copy_from_slice(b"P ");
    let mut n = 2;
    if presence.is_nan() {
        buf[n..n + 2].copy_from_slice(b"NA");
        n += 2;
    } else {
        let hundredths = (presence.clamp(0.0, 1.0) * 100.0).round() as u8;
        buf[n..n + 4].copy_from_slice(&[
            b'0' + hundredths / 100,
            b'.',
            b'0' + hundredths / 10 % 10,
            b'0' + hundredths % 10,
        ]);
        n += 4;
    }
    if absent {
        buf[n..n + 2].copy_from_slice(b" -");
        n += 2;
    }
    if review {
        buf[n..n + 2].copy_from_slice(b" !");
        n += 2;
    }
    &buf[..n]
}

/// Draws `text` in the top-left corner of an RGB frame, each font pixel a
/// `scale × scale` square, on a `background` box; clipped to the frame.
pub(super) fn draw_label(
    out: &mut Frame,
    text: &[u8],
    scale: usize,
    colour: [u8; 3],
    background: [u8; 3],
) {
    if text.is_empty() {
        return;
    }
    let advance = GLYPH_W + SPACING;
    let box_w = (2 * PADDING + text.len() * advance - SPACING) * scale;
    let box_h = (2 * PADDING + GLYPH_H) * scale;
    for y in 0..box_h.min(out.height()) {
        for x in 0..box_w.min(out.width()) {
            put(out, x, y, background);
        }
    }
    for (i, &c) in text.iter().enumerate() {
        let rows = glyph(c);
        let left = PADDING + i * advance;
        for (gy, bits) in rows.iter().enumerate() {
            for gx in 0..GLYPH_W {
                if bits & (0x10 >> gx) == 0 {
                    continue;
                }
                let (x, y) = ((left + gx) * scale, (PADDING + gy) * scale);
                for dy in 0..scale {
                    for dx in 0..scale {
                        put(out, x + dx, y + dy, colour);
                    }
                }
            }
        }
    }
}
