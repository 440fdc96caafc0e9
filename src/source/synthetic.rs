//! `synthetic[:SEED]`: a deterministic moving phantom, for tests and soak
//! runs without a capture card.
//!
//! A 256×256 B-mode-like picture: depth-graded speckle, a bright fascia
//! line, and an anechoic (dark) elliptical lesion with posterior
//! enhancement that drifts across the field, leaves it and comes back
//! (present in about two frames of three). Every pixel is a function of
//! (seed, frame index, x, y), so a frame can be regenerated exactly, and
//! its ground-truth mask with it. Nothing is allocated per frame.

use crate::frame::{Frame, Mask, PixelFormat};

/// Side of the synthetic frames.
pub const SIZE: usize = 256;
/// Nominal frame rate.
pub const FRAME_RATE: (u32, u32) = (30, 1);
/// Frames per appear-and-leave cycle of the lesion.
const CYCLE: u64 = 240;

/// The phantom's lesion in frame `index`: centre, radii, or `None` when out
/// of view.
fn lesion(seed: u64, index: u64) -> Option<(f32, f32, f32, f32)> {
    let phase = (index + seed % CYCLE) % CYCLE;
    if phase >= 160 {
        return None;
    }
    let t = phase as f32 / 160.0;
    let s = (seed % 1000) as f32 / 1000.0;
    let cx = 40.0 + 176.0 * t;
    let cy = 120.0 + 40.0 * (std::f32::consts::TAU * (t + s)).sin();
    let rx = 22.0 + 10.0 * (std::f32::consts::PI * t).sin();
    let ry = rx * (0.7 + 0.2 * s);
    Some((cx, cy, rx, ry))
}

fn inside(l: (f32, f32, f32, f32), x: usize, y: usize) -> bool {
    let dx = (x as f32 + 0.5 - l.0) / l.2;
    let dy = (y as f32 + 0.5 - l.1) / l.3;
    dx * dx + dy * dy <= 1.0
}

/// A 64-bit mix (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes frame `index` of phantom `seed` into `frame` (256×256 gray).
pub fn render(seed: u64, index: u64, frame: &mut Frame) {
    frame.reset(SIZE, SIZE, PixelFormat::Gray8);
    frame.sequence = index;
    let l = lesion(seed, index);
    // Speckle is correlated over 2×2 cells and drifts slowly with the probe.
    let drift = index / 4;
    for (y, row) in frame.data_mut().chunks_exact_mut(SIZE).enumerate() {
        let depth_gain = 0.55 + 0.45 * (1.0 - y as f32 / SIZE as f32);
        for (x, px) in row.iter_mut().enumerate() {
            let cell = ((y as u64 / 2) << 20) ^ ((x as u64 + drift) / 2);
            let r = mix(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ cell ^ (index << 40));
            let u = (r >> 11) as f32 / (1u64 << 53) as f32;
            // Rayleigh-distributed envelope, log-compressed.
            let envelope = (-2.0 * (1.0 - u).max(1e-6).ln()).sqrt();
            let mut v = 70.0 * envelope * depth_gain;
            if (60..64).contains(&y) {
                v += 90.0;
            }
            if let Some(l) = l {
                if inside(l, x, y) {
                    v *= 0.15;
                } else if (x as f32 - l.0).abs() < l.2 && y as f32 > l.1 + l.3 {
                    v *= 1.35;
                }
            }
            *px = v.clamp(0.0, 255.0) as u8;
        }
    }
}

/// Writes the ground truth of frame `index` into `mask`; whether the lesion
/// is in view.
pub fn truth(seed: u64, index: u64, mask: &mut Mask) -> bool {
    mask.reset(SIZE, SIZE);
    let Some(l) = lesion(seed, index) else {
        return false;
    };
    for (y, row) in mask.data_mut().chunks_exact_mut(SIZE).enumerate() {
        for (x, m) in row.iter_mut().enumerate() {
            *m = u8::from(inside(l, x, y));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_deterministic_and_seeds_differ() {
        let (mut a, mut b) = (
            Frame::zeros(1, 1, PixelFormat::Gray8),
            Frame::zeros(1, 1, PixelFormat::Gray8),
        );
        render(3, 17, &mut a);
        render(3, 17, &mut b);
        assert_eq!(a.data(), b.data());
        render(4, 17, &mut b);
        assert_ne!(a.data(), b.data());
    }

    #[test]
    fn the_lesion_is_dark_where_the_truth_says() {
        let mut f = Frame::zeros(1, 1, PixelFormat::Gray8);
        let mut m = Mask::zeros(1, 1);
        let mut present = 0;
        for i in 0..CYCLE {
            render(0, i, &mut f);
            if truth(0, i, &mut m) {
                present += 1;
                let (mut inside, mut n_in, mut outside, mut n_out) = (0u64, 0u64, 0u64, 0u64);
                for (&p, &t) in f.data().iter().zip(m.data()) {
                    if t == 1 {
                        inside += u64::from(p);
                        n_in += 1;
                    } else {
                        outside += u64::from(p);
                        n_out += 1;
                    }
                }
                assert!(n_in > 500, "frame {i}: lesion of {n_in} px");
                assert!(
                    inside / n_in * 3 < outside / n_out,
                    "frame {i} lesion not dark"
                );
            } else {
                assert!(m.is_empty());
            }
        }
        assert_eq!(present, 160);
    }
}
