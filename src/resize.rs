//! Bilinear resampling with PyTorch's `align_corners = false` rule.
//!
//! Output index `i` samples source coordinate `(i + 0.5) · n_in / n_out −
//! 0.5`, clamped at 0 (and the upper neighbour clamped at `n_in − 1`): what
//! `F.interpolate(mode="bilinear", align_corners=False)` does without
//! antialiasing. The recipe resizes frames, CAMs and masks this way, so the
//! runtime must too. Arithmetic is f32 in PyTorch's order.

/// One output position: the two source indices and the weight of the second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tap {
    /// Lower source index.
    pub i0: usize,
    /// Upper source index (`i0 + 1`, clamped).
    pub i1: usize,
    /// Weight of `i1`; `i0` gets `1 − frac`.
    pub frac: f32,
}

/// The taps of an axis resampled from `n_in` to `n_out` samples (both > 0).
pub fn axis(n_in: usize, n_out: usize) -> Vec<Tap> {
    let mut taps = Vec::with_capacity(n_out);
    axis_into(n_in, n_out, &mut taps);
    taps
}

/// [`axis`] into a reused vector.
pub fn axis_into(n_in: usize, n_out: usize, taps: &mut Vec<Tap>) {
    taps.clear();
    let scale = n_in as f32 / n_out as f32;
    for i in 0..n_out {
        let src = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in.saturating_sub(1));
        let i1 = (i0 + 1).min(n_in.saturating_sub(1));
        taps.push(Tap {
            i0,
            i1,
            frac: src - i0 as f32,
        });
    }
}

/// Resamples `src` (row-major, `src_w` wide) into `dst` (row-major,
/// `xs.len()` wide, `ys.len()` high) with the given taps, reading each
/// source value through `value` (a conversion or a ReLU, say). The taps must
/// index inside `src`.
pub fn bilinear<T: Copy>(
    src: &[T],
    src_w: usize,
    ys: &[Tap],
    xs: &[Tap],
    dst: &mut [f32],
    value: impl Fn(T) -> f32,
) {
    let dst_w = xs.len();
    for (row, ty) in dst.chunks_exact_mut(dst_w).zip(ys) {
        let r0 = &src[ty.i0 * src_w..(ty.i0 + 1) * src_w];
        let r1 = &src[ty.i1 * src_w..(ty.i1 + 1) * src_w];
        let fy = ty.frac;
        for (out, tx) in row.iter_mut().zip(xs) {
            let fx = tx.frac;
            let top = value(r0[tx.i0]) * (1.0 - fx) + value(r0[tx.i1]) * fx;
            let bot = value(r1[tx.i0]) * (1.0 - fx) + value(r1[tx.i1]) * fx;
            *out = top * (1.0 - fy) + bot * fy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_when_sizes_match() {
        for t in axis(5, 5) {
            assert_eq!(t.frac, 0.0);
            assert_eq!(t.i0, t.i1.min(t.i0));
        }
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 12];
        bilinear(&src, 4, &axis(3, 3), &axis(4, 4), &mut dst, |v| v);
        assert_eq!(src, dst);
    }

    #[test]
    fn upsampling_by_two_matches_pytorch() {
        // F.interpolate(torch.tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear")
        // → [0.0, 0.25, 0.75, 1.0]
        let mut dst = vec![0.0; 4];
        bilinear(&[0.0f32, 1.0], 2, &axis(1, 1), &axis(2, 4), &mut dst, |v| v);
        assert_eq!(dst, [0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn downsampling_by_two_averages_pairs() {
        // Half-pixel rule at scale 2 samples between each pair.
        let mut dst = vec![0.0; 2];
        bilinear(
            &[0u8, 10, 20, 30],
            4,
            &axis(1, 1),
            &axis(4, 2),
            &mut dst,
            f32::from,
        );
        assert_eq!(dst, [5.0, 25.0]);
    }
}
