//! Mask surfaces and the exact Euclidean distance transform.
//!
//! [`squared_distance_to`] is the Felzenszwalb–Huttenlocher transform
//! ("Distance Transforms of Sampled Functions", 2012): a 1-D pass down each
//! column gives the squared distance to the nearest feature in that column,
//! then a pass along each row takes the lower envelope of the parabolas
//! `(x - q)² + g(q)`. Both passes are linear, so the whole transform is
//! O(width × height). The squared distances are small integers, exact in
//! `f64`, so their square roots equal scipy's `distance_transform_edt`.

use crate::frame::Mask;

/// The surface of `m`: target pixels that the full 3×3 erosion (pixels
/// outside the image counted as background) removes, i.e. target pixels on
/// the image border or with a background pixel among their 8 neighbours.
pub(crate) fn surface(m: &Mask) -> Vec<bool> {
    let (w, h) = (m.width(), m.height());
    let data = m.data();
    let on = |x: usize, y: usize| data[y * w + x] != 0;
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if !on(x, y) {
                continue;
            }
            let inner = x > 0 && y > 0 && x + 1 < w && y + 1 < h;
            let eroded = inner && (y - 1..=y + 1).all(|yy| (x - 1..=x + 1).all(|xx| on(xx, yy)));
            out[y * w + x] = !eroded;
        }
    }
    out
}

/// For every pixel of a `w × h` image, the squared Euclidean distance to
/// the nearest pixel where `features` is true (`f64::INFINITY` everywhere
/// when there is none). `features.len()` must be `w × h`.
pub(crate) fn squared_distance_to(features: &[bool], w: usize, h: usize) -> Vec<f64> {
    debug_assert_eq!(features.len(), w * h);
    let mut g = vec![f64::INFINITY; w * h];
    // Columns: distance to the nearest feature above, then below.
    for x in 0..w {
        let mut last: Option<usize> = None;
        for y in 0..h {
            if features[y * w + x] {
                last = Some(y);
            }
            if let Some(l) = last {
                let d = (y - l) as f64;
                g[y * w + x] = d * d;
            }
        }
        let mut next: Option<usize> = None;
        for y in (0..h).rev() {
            if features[y * w + x] {
                next = Some(y);
            }
            if let Some(n) = next {
                let d = (n - y) as f64;
                let i = y * w + x;
                g[i] = g[i].min(d * d);
            }
        }
    }
    // Rows: lower envelope of the parabolas rooted at each column.
    let mut v = vec![0usize; w];
    let mut z = vec![0f64; w + 1];
    let mut row = vec![0f64; w];
    for y in 0..h {
        let line = &mut g[y * w..(y + 1) * w];
        row.copy_from_slice(line);
        envelope(&row, line, &mut v, &mut z);
    }
    g
}

/// The 1-D squared distance transform of `f` into `out`: `out[q] = min_p
/// (q - p)² + f[p]`, skipping infinite `f[p]`. `v` and `z` are scratch of
/// lengths `n` and `n + 1`.
fn envelope(f: &[f64], out: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let mut finite = f.iter().enumerate().filter(|(_, x)| x.is_finite());
    let Some((first, _)) = finite.next() else {
        out.fill(f64::INFINITY);
        return;
    };
    let mut k = 0;
    v[0] = first;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for (q, &fq) in finite {
        let qf = q as f64;
        let mut s;
        loop {
            let p = v[k];
            let pf = p as f64;
            s = ((fq + qf * qf) - (f[p] + pf * pf)) / (2.0 * (qf - pf));
            // z[0] is -inf, so this stops at k = 0.
            if s <= z[k] {
                k -= 1;
            } else {
                break;
            }
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        let qf = q as f64;
        while z[k + 1] < qf {
            k += 1;
        }
        let d = qf - v[k] as f64;
        *o = d * d + f[v[k]];
    }
}
