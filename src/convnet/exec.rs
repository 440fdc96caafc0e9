//! Running [`super::ConvNet`]'s steps on its buffers.

use crate::kernels::{Depthwise, Kernels};

use super::{ConvKind, Geometry, Hwc, Step};

/// Two distinct slots: one read, one written.
fn pair(bufs: &mut [Vec<f32>], read: usize, write: usize) -> (&[f32], &mut [f32]) {
    debug_assert_ne!(read, write);
    if read < write {
        let (a, b) = bufs.split_at_mut(write);
        (&a[read], &mut b[0])
    } else {
        let (a, b) = bufs.split_at_mut(read);
        (&b[0], &mut a[write])
    }
}

pub(super) fn run_step(
    k: &Kernels,
    step: &Step,
    slot: &[usize],
    shapes: &[Hwc],
    bufs: &mut [Vec<f32>],
    im2col: &mut [f32],
) {
    match step {
        Step::Conv {
            src,
            dst,
            kind,
            bias,
            relu,
        } => {
            let (si, so) = (shapes[*src], shapes[*dst]);
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            let (x, y) = (&x[..si.len()], &mut y[..so.len()]);
            match kind {
                ConvKind::Pointwise { w } => k.gemm_f32(si.h * si.w, x, w, Some(bias), y),
                ConvKind::Dense { w, geo } => {
                    let cols = geo.k * geo.k * si.c;
                    let a = &mut im2col[..so.h * so.w * cols];
                    fill_im2col(x, si, so, *geo, a);
                    k.gemm_f32(so.h * so.w, a, w, Some(bias), y);
                }
                ConvKind::Depthwise { w, geo } => {
                    let shape = Depthwise {
                        h: si.h,
                        w: si.w,
                        c: si.c,
                        k: geo.k,
                        stride: geo.stride,
                        pad: geo.pad,
                        dilation: geo.dilation,
                        oh: so.h,
                        ow: so.w,
                    };
                    k.depthwise(x, w, bias, shape, y);
                }
            }
            if *relu {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        Step::Relu { src, dst } => {
            let n = shapes[*src].len();
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            for (o, &i) in y[..n].iter_mut().zip(&x[..n]) {
                *o = i.max(0.0);
            }
        }
        Step::Add { a, b, dst, relu } => {
            // The output never shares a slot with an input (assign_slots).
            let n = shapes[*dst].len();
            let (xa, d) = pair(bufs, slot[*a], slot[*dst]);
            d[..n].copy_from_slice(&xa[..n]);
            let (xb, d) = pair(bufs, slot[*b], slot[*dst]);
            for (o, &v) in d[..n].iter_mut().zip(&xb[..n]) {
                *o += v;
            }
            if *relu {
                d[..n].iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        Step::Upsample2 { src, dst } => {
            let (si, so) = (shapes[*src], shapes[*dst]);
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            for oy in 0..so.h {
                for ox in 0..so.w {
                    let from = ((oy / 2) * si.w + ox / 2) * si.c;
                    let to = (oy * so.w + ox) * so.c;
                    y[to..to + so.c].copy_from_slice(&x[from..from + si.c]);
                }
            }
        }
        Step::LayerNorm {
            src,
            dst,
            gamma,
            beta,
            eps,
        } => {
            let n = shapes[*src].len();
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            k.layer_norm(&x[..n], gamma, beta, *eps, &mut y[..n]);
        }
        Step::Affine {
            src,
            dst,
            scale,
            shift,
        } => {
            let n = shapes[*src].len();
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            for (o, &v) in y[..n].iter_mut().zip(&x[..n]) {
                *o = v * scale + shift;
            }
        }
        Step::Sigmoid { src, dst } => {
            let n = shapes[*src].len();
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            for (o, &v) in y[..n].iter_mut().zip(&x[..n]) {
                *o = 1.0 / (1.0 + (-v).exp());
            }
        }
        Step::GlobalMax { src, dst } => {
            let si = shapes[*src];
            let (x, y) = pair(bufs, slot[*src], slot[*dst]);
            let y = &mut y[..si.c];
            y.fill(f32::NEG_INFINITY);
            for px in x[..si.len()].chunks_exact(si.c) {
                for (m, &v) in y.iter_mut().zip(px) {
                    // NaN propagates, as in tract and onnxruntime.
                    *m = if v.is_nan() || *m < v { v } else { *m };
                }
            }
        }
    }
}

/// Row `oy·W + ox` of `a`: the k×k window of output pixel (oy, ox), taps
/// in (ky, kx) order, input channels innermost; zero outside the input.
fn fill_im2col(x: &[f32], si: Hwc, so: Hwc, geo: Geometry, a: &mut [f32]) {
    let cols = geo.k * geo.k * si.c;
    for oy in 0..so.h {
        for ox in 0..so.w {
            let row = &mut a[(oy * so.w + ox) * cols..][..cols];
            for ky in 0..geo.k {
                let iy = (oy * geo.stride + ky * geo.dilation) as isize - geo.pad as isize;
                for kx in 0..geo.k {
                    let ix = (ox * geo.stride + kx * geo.dilation) as isize - geo.pad as isize;
                    let dst = &mut row[(ky * geo.k + kx) * si.c..][..si.c];
                    if iy < 0 || ix < 0 || iy as usize >= si.h || ix as usize >= si.w {
                        dst.fill(0.0);
                    } else {
                        let from = (iy as usize * si.w + ix as usize) * si.c;
                        dst.copy_from_slice(&x[from..from + si.c]);
                    }
                }
            }
        }
    }
}
