//! Frame → model input: what the channels hold (`input.color`), bilinear to
//! S×S (`align_corners = false`), then `(x − mean) / std` per channel.
//!
//! | `input.color` | gray8 frame | rgb8 frame |
//! |---|---|---|
//! | `gray` (any C) | the frame in every channel | its BT.601 luma `0.299 R + 0.587 G + 0.114 B` in every channel |
//! | `rgb` (C = 3) | the frame in every channel | R, G, B in channels 0, 1, 2 |
//!
//! A frame that gives every channel the same plane (gray, or luma) is
//! resized once and copied to the other channels before normalising. The
//! taps and the plane buffer are kept: nothing is allocated per frame once
//! a frame of the size has been seen.

use crate::bundle::{InputColor, InputParams};
use crate::frame::{Frame, PixelFormat};
use crate::resize::{self, Tap};

/// The frame-side buffers of preprocessing, reused from frame to frame.
#[derive(Debug, Default)]
pub(super) struct Preprocess {
    /// The frame size the taps were made for.
    size: (usize, usize),
    /// Vertical taps, frame height → S.
    ys: Vec<Tap>,
    /// Horizontal taps, frame width → S.
    xs: Vec<Tap>,
    /// One plane of an RGB frame (a channel, or the luma) as f32.
    plane: Vec<f32>,
}

impl Preprocess {
    /// `frame` → normalized C×S×S input in `input`, whose length is C·S·S
    /// (C and S from `m`, whose `mean` and `std` have C values).
    pub(super) fn run(&mut self, m: &InputParams, frame: &Frame, input: &mut [f32]) {
        let s = m.size as usize;
        let (w, h) = (frame.width(), frame.height());
        if self.size != (w, h) {
            resize::axis_into(h, s, &mut self.ys);
            resize::axis_into(w, s, &mut self.xs);
            self.size = (w, h);
        }
        let (ys, xs) = (&self.ys, &self.xs);
        let n = s * s;
        match (frame.format(), m.color) {
            (PixelFormat::Rgb8, InputColor::Rgb) => {
                for (c, out) in input.chunks_exact_mut(n).enumerate() {
                    self.plane.resize(w * h, 0.0);
                    // C = 3 (validated); a fourth channel would repeat B.
                    for (p, px) in self.plane.iter_mut().zip(frame.data().chunks_exact(3)) {
                        *p = f32::from(px[c.min(2)]);
                    }
                    resize::bilinear(&self.plane, w, ys, xs, out, |v| v);
                }
            }
            (format, _) => {
                let (first, rest) = input.split_at_mut(n.min(input.len()));
                match format {
                    PixelFormat::Gray8 => {
                        resize::bilinear(frame.data(), w, ys, xs, first, f32::from)
                    }
                    PixelFormat::Rgb8 => {
                        self.plane.resize(w * h, 0.0);
                        for (p, px) in self.plane.iter_mut().zip(frame.data().chunks_exact(3)) {
                            *p = 0.299 * f32::from(px[0])
                                + 0.587 * f32::from(px[1])
                                + 0.114 * f32::from(px[2]);
                        }
                        resize::bilinear(&self.plane, w, ys, xs, first, |v| v);
                    }
                }
                for out in rest.chunks_exact_mut(n) {
                    out.copy_from_slice(first);
                }
            }
        }
        for ((out, &mean), &std) in input.chunks_exact_mut(n).zip(&m.mean).zip(&m.std) {
            for v in out.iter_mut() {
                *v = (*v - mean) / std;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Resize;

    /// S = 16.
    const S: usize = 16;

    fn params(channels: u32, color: InputColor, mean: &[f32], std: &[f32]) -> InputParams {
        InputParams {
            size: S as u32,
            channels,
            color,
            embedding_size: 4,
            mean: mean.to_vec(),
            std: std.to_vec(),
            resize: Resize::Bilinear,
        }
    }

    /// A `w`×`h` RGB frame whose channels differ everywhere.
    fn rgb_frame(w: usize, h: usize) -> Frame {
        let mut f = Frame::zeros(w, h, PixelFormat::Rgb8);
        for (i, px) in f.data_mut().chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&[
                (i * 7 % 256) as u8,
                (i * 13 % 251) as u8,
                255 - (i % 200) as u8,
            ]);
        }
        f
    }

    fn run(m: &InputParams, frame: &Frame) -> Vec<f32> {
        let mut input = vec![f32::NAN; m.channels as usize * S * S];
        Preprocess::default().run(m, frame, &mut input);
        input
    }

    /// A gray-trained model with three channels (LiteMedSAM fine-tuned on
    /// gray frames) gets the frame's luma in every channel, not its colours.
    #[test]
    fn a_gray_model_with_three_channels_gets_the_luma_in_each() {
        let frame = rgb_frame(S, S);
        let m = params(3, InputColor::Gray, &[0.0; 3], &[1.0; 3]);
        let input = run(&m, &frame);
        let (c0, rest) = input.split_at(S * S);
        for (i, &v) in c0.iter().enumerate() {
            // S×S to S×S: the taps are the identity, the value exact.
            assert_eq!(v, frame.luma(i % S, i / S), "pixel {i}");
        }
        assert_eq!(&rest[..S * S], c0);
        assert_eq!(&rest[S * S..], c0);
        // One channel: the same luma.
        let one = run(&params(1, InputColor::Gray, &[0.0], &[1.0]), &frame);
        assert_eq!(one, c0);
    }

    /// An RGB model gets R, G, B in channel order.
    #[test]
    fn an_rgb_model_gets_the_channels_in_order() {
        let frame = rgb_frame(S, S);
        let m = params(3, InputColor::Rgb, &[0.0; 3], &[1.0; 3]);
        let input = run(&m, &frame);
        for (c, plane) in input.chunks_exact(S * S).enumerate() {
            for (i, (&v, px)) in plane.iter().zip(frame.data().chunks_exact(3)).enumerate() {
                assert_eq!(v, f32::from(px[c]), "channel {c}, pixel {i}");
            }
        }
    }

    /// A gray frame is replicated, for either colour; a gray model's channels
    /// match whether the frame came gray or as RGB with R = G = B.
    #[test]
    fn a_gray_frame_is_replicated() {
        let mut gray = Frame::zeros(23, 37, PixelFormat::Gray8);
        for (i, v) in gray.data_mut().iter_mut().enumerate() {
            *v = (i * 11 % 256) as u8;
        }
        let mut as_rgb = Frame::zeros(23, 37, PixelFormat::Rgb8);
        for (px, &v) in as_rgb.data_mut().chunks_exact_mut(3).zip(gray.data()) {
            px.fill(v);
        }
        for color in [InputColor::Gray, InputColor::Rgb] {
            let m = params(3, color, &[0.0; 3], &[1.0; 3]);
            let input = run(&m, &gray);
            let (c0, rest) = input.split_at(S * S);
            assert_eq!(&rest[..S * S], c0, "{color}");
            assert_eq!(&rest[S * S..], c0, "{color}");
            let from_rgb = run(&m, &as_rgb);
            for (a, b) in input.iter().zip(&from_rgb) {
                // 0.299 + 0.587 + 0.114 sums to 1 within an f32 rounding.
                assert!((a - b).abs() <= 1e-3, "{color}: {a} vs {b}");
            }
        }
    }

    /// Resized frames follow the same rule: a gray model's channels are the
    /// resized luma plane, an RGB model's the resized colour planes; each
    /// channel is then normalized with its own mean and std.
    #[test]
    fn resized_and_normalized_per_channel() {
        let (w, h) = (40, 24);
        let frame = rgb_frame(w, h);
        let (ys, xs) = (resize::axis(h, S), resize::axis(w, S));
        let plane = |f: &dyn Fn(&[u8]) -> f32| {
            let src: Vec<f32> = frame.data().chunks_exact(3).map(f).collect();
            let mut out = vec![0.0; S * S];
            resize::bilinear(&src, w, &ys, &xs, &mut out, |v| v);
            out
        };
        let (mean, std) = ([10.0, 20.0, 30.0], [2.0, 4.0, 8.0]);
        let luma =
            plane(&|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]));
        let gray = run(&params(3, InputColor::Gray, &mean, &std), &frame);
        let rgb = run(&params(3, InputColor::Rgb, &mean, &std), &frame);
        for c in 0..3 {
            let colour = plane(&|p| f32::from(p[c]));
            let range = c * S * S..(c + 1) * S * S;
            for ((&g, &l), (&r, &k)) in gray[range.clone()]
                .iter()
                .zip(&luma)
                .zip(rgb[range].iter().zip(&colour))
            {
                assert_eq!(g, (l - mean[c]) / std[c], "gray, channel {c}");
                assert_eq!(r, (k - mean[c]) / std[c], "rgb, channel {c}");
            }
        }
    }

    /// Warm, the buffers are reused: the plane keeps its allocation.
    #[test]
    fn buffers_are_reused_once_warm() {
        let frame = rgb_frame(40, 24);
        for color in [InputColor::Gray, InputColor::Rgb] {
            let m = params(3, color, &[0.0; 3], &[1.0; 3]);
            let mut pre = Preprocess::default();
            let mut input = vec![0.0; 3 * S * S];
            pre.run(&m, &frame, &mut input);
            let (plane, ys, xs) = (pre.plane.as_ptr(), pre.ys.as_ptr(), pre.xs.as_ptr());
            let first = input.clone();
            for _ in 0..3 {
                pre.run(&m, &frame, &mut input);
            }
            assert_eq!(input, first);
            assert_eq!(
                (pre.plane.as_ptr(), pre.ys.as_ptr(), pre.xs.as_ptr()),
                (plane, ys, xs),
                "{color}"
            );
        }
    }
}
