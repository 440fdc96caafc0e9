//! BT.601 YCbCr ↔ RGB in 16.16 fixed point, rounded to nearest, clamped.

use super::ColorRange;

/// 2^16: one in 16.16 fixed point.
const ONE: i32 = 1 << 16;

/// `x` in 16.16 fixed point, rounded.
const fn q16(x: f64) -> i32 {
    (x * ONE as f64 + 0.5) as i32
}

/// Clamps a 16.16 value, rounded to nearest, to a byte.
fn to_u8(v: i32) -> u8 {
    ((v + ONE / 2) >> 16).clamp(0, 255) as u8
}

/// YCbCr → RGB coefficients for one range.
#[derive(Debug, Clone, Copy)]
pub(super) struct YuvToRgb {
    y_offset: i32,
    y_scale: i32,
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

impl YuvToRgb {
    /// The BT.601 matrix for `range`.
    pub(super) const fn new(range: ColorRange) -> YuvToRgb {
        // Full range: Kr = 0.299, Kb = 0.114. Limited range scales Y by
        // 255/219 and chroma by 255/224.
        let (y_offset, y_scale, c_scale) = match range {
            ColorRange::Full => (0, 1.0, 1.0),
            ColorRange::Limited => (16, 255.0 / 219.0, 255.0 / 224.0),
        };
        YuvToRgb {
            y_offset,
            y_scale: q16(y_scale),
            r_cr: q16(1.402 * c_scale),
            g_cb: q16(0.344_136 * c_scale),
            g_cr: q16(0.714_136 * c_scale),
            b_cb: q16(1.772 * c_scale),
        }
    }

    /// One pixel.
    #[inline]
    pub(super) fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = (i32::from(y) - self.y_offset) * self.y_scale;
        let cb = i32::from(cb) - 128;
        let cr = i32::from(cr) - 128;
        [
            to_u8(y + self.r_cr * cr),
            to_u8(y - self.g_cb * cb - self.g_cr * cr),
            to_u8(y + self.b_cb * cb),
        ]
    }
}

/// Full-range BT.601 luma of one pixel.
#[inline]
pub(super) fn luma(r: u8, g: u8, b: u8) -> u8 {
    // 19595 + 38470 + 7471 = 65536: white stays 255.
    let v = 19595 * i32::from(r) + 38470 * i32::from(g) + 7471 * i32::from(b);
    to_u8(v)
}

/// Full-range BT.601 (Cb, Cr) of the mean of `n` pixels whose channel sums
/// are `r`, `g`, `b` (`n` = 1 for one pixel), rounded to nearest.
#[inline]
pub(super) fn chroma(r: u32, g: u32, b: u32, n: u32) -> (u8, u8) {
    let (r, g, b, n) = (
        i64::from(r),
        i64::from(g),
        i64::from(b),
        i64::from(n.max(1)),
    );
    // 11058 + 21710 = 32768 and 27439 + 5329 = 32768: grays give 0.
    let cb = -11058 * r - 21710 * g + 32768 * b;
    let cr = 32768 * r - 27439 * g - 5329 * b;
    let div = n << 16;
    let round = |v: i64| ((v + div / 2).div_euclid(div) + 128).clamp(0, 255) as u8;
    (round(cb), round(cr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grays_and_primaries() {
        let full = YuvToRgb::new(ColorRange::Full);
        let limited = YuvToRgb::new(ColorRange::Limited);
        for v in [0u8, 1, 77, 128, 254, 255] {
            assert_eq!(full.rgb(v, 128, 128), [v; 3]);
            assert_eq!(luma(v, v, v), v);
            assert_eq!(chroma(v.into(), v.into(), v.into(), 1), (128, 128));
        }
        assert_eq!(limited.rgb(16, 128, 128), [0; 3]);
        assert_eq!(limited.rgb(235, 128, 128), [255; 3]);
        assert_eq!(limited.rgb(0, 128, 128), [0; 3]);
        // Full-range red and back.
        assert_eq!((luma(255, 0, 0), chroma(255, 0, 0, 1)), (76, (85, 255)));
        assert_eq!(full.rgb(76, 85, 255), [254, 0, 0]);
    }
}
