//! Kernel tests: every operation on every level this CPU runs against the
//! scalar reference (and the scalar reference against f64 math). A level the
//! CPU lacks prints `skipped: level X not available on this CPU`; each level
//! that ran prints `ran: OP on X (name)` (see them with `--nocapture`).
//!
//! Tolerances (level vs scalar): row ops as stated per test; GEMM in
//! `tests_gemm.rs`.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::level::apply_override;
use super::*;

/// Runs `check` on the kernels of `level`, or says visibly why not.
pub(super) fn run(level: Level, op: &str, check: fn(Kernels)) {
    match Kernels::for_level(level) {
        Some(k) => {
            check(k);
            say(&format!("ran: {op} on {level} ({})", k.name()));
        }
        None => say(&format!(
            "skipped: level {level} not available on this CPU ({op})"
        )),
    }
}

/// Writes one line to stderr in a single `write` call. `eprintln!` writes
/// its pieces one by one, and under `--nocapture` libtest's own lines from
/// other test threads land between them (`ran: test … ok` then
/// `softmax on …`), so scripts/test-aarch64.sh, which greps for whole
/// lines, missed a level that had run. A write of one short line to a pipe
/// is atomic (POSIX: at most PIPE_BUF bytes).
fn say(line: &str) {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    // A test's progress line failing to print is not a test failure.
    let _ = std::io::stderr().lock().write_all(&bytes);
}

/// One test per level (`OP::scalar`, `OP::avx2_fma`, `OP::neon`, …) running
/// `check(Kernels)`.
macro_rules! level_tests {
    ($op:ident, $check:path) => {
        mod $op {
            use super::*;
            #[test]
            fn scalar() {
                run(Level::Scalar, stringify!($op), $check);
            }
            #[cfg(target_arch = "x86_64")]
            #[test]
            fn avx2_fma() {
                run(Level::Avx2Fma, stringify!($op), $check);
            }
            #[cfg(target_arch = "x86_64")]
            #[test]
            fn avx512_vnni() {
                run(Level::Avx512Vnni, stringify!($op), $check);
            }
            #[cfg(target_arch = "aarch64")]
            #[test]
            fn neon() {
                run(Level::Neon, stringify!($op), $check);
            }
            #[cfg(target_arch = "aarch64")]
            #[test]
            fn neon_dot() {
                run(Level::NeonDot, stringify!($op), $check);
            }
            #[cfg(target_arch = "aarch64")]
            #[test]
            fn neon_i8mm() {
                run(Level::NeonI8mm, stringify!($op), $check);
            }
        }
    };
}
pub(super) use level_tests;

/// Proptest cases: `PROPTEST_CASES` if set (qemu runs lower it), else `n`.
pub(super) fn runner(n: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    })
}

/// Every length that exercises a tail: 0 ..= 2 · 16 + 1.
pub(super) const TAIL_LENS: std::ops::RangeInclusive<usize> = 0..=33;

fn vals(len: usize, scale: f32) -> Vec<f32> {
    // A fixed pseudo-random sequence, for the edge-case tests.
    let mut s = 0x9e37_79b9u32 ^ len as u32;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// `erf` in f64 from the everywhere-convergent positive series
/// `erf x = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))`.
pub(super) fn erf64(x: f64) -> f64 {
    if x.abs() > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

#[test]
fn erf64_matches_known_values() {
    for (x, v) in [
        (0.1, 0.112_462_916_018_284_9),
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (3.0, 0.999_977_909_503_001_4),
    ] {
        assert!((erf64(x) - v).abs() < 1e-15, "erf64({x})");
        assert!((erf64(-x) + v).abs() < 1e-15, "erf64(-{x})");
    }
}

#[test]
fn erf_f32_is_within_1_3e_7_of_f64() {
    // Every 1e-4 over [-6, 6]: 120 001 points.
    let mut worst = (0.0f64, 0.0f32);
    for i in -60_000..=60_000 {
        let x = i as f32 * 1e-4;
        let err = (f64::from(math::erf(x)) - erf64(f64::from(x))).abs();
        if err > worst.0 {
            worst = (err, x);
        }
    }
    eprintln!("erf_f32 max abs error {:.3e} at {}", worst.0, worst.1);
    assert!(
        worst.0 <= 1.3e-7,
        "erf max error {:.3e} at {}",
        worst.0,
        worst.1
    );
    assert_eq!(math::erf(0.0), 0.0);
    assert_eq!(math::erf(10.0), 1.0);
    assert_eq!(math::erf(-10.0), -1.0);
}

#[test]
fn exp_f32_is_within_2_ulp() {
    for i in -87_000..=88_000 {
        let x = (i as f32 * 1e-3).min(math::EXP_HI);
        let want = f64::from(x).exp();
        let got = f64::from(math::exp(x));
        let ulp = f64::from(f32::EPSILON) * want;
        assert!(
            (got - want).abs() <= 2.0 * ulp,
            "exp({x}) = {got}, want {want}"
        );
    }
    assert_eq!(math::exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(math::exp(-100.0), 0.0);
}

#[test]
fn gelu_is_the_erf_form_not_tanh() {
    // At x = 1 the erf form gives 0.8413447, tanh's approximation 0.8411920.
    assert!((math::gelu(1.0) - 0.841_344_7).abs() < 2e-7);
    assert!((math::gelu(1.0) - 0.841_192).abs() > 1e-4);
}

#[test]
fn override_only_lowers() {
    let best = Level::best();
    assert_eq!(apply_override(best, "scalar"), Level::Scalar);
    assert_eq!(
        apply_override(Level::Scalar, Level::ALL[Level::ALL.len() - 1].env_name()),
        Level::Scalar
    );
    assert_eq!(apply_override(best, "no-such-level"), best);
    assert_eq!(apply_override(best, ""), best);
    #[cfg(target_arch = "x86_64")]
    assert_eq!(apply_override(Level::Avx2Fma, "neon"), Level::Avx2Fma);
    #[cfg(target_arch = "aarch64")]
    {
        assert_eq!(apply_override(Level::NeonDot, "neon-i8mm"), Level::NeonDot);
        assert_eq!(apply_override(Level::NeonI8mm, "NEON"), Level::Neon);
    }
}

#[test]
fn levels_report() {
    for &level in Level::ALL {
        match Kernels::for_level(level) {
            Some(k) => say(&format!("level {level}: available, {:?}", k.op_names())),
            None => say(&format!("skipped: level {level} not available on this CPU")),
        }
    }
    let k = Kernels::get();
    assert!(k.level() <= Level::best());
    if let Ok(v) = std::env::var(ENV_OVERRIDE) {
        assert_eq!(
            k.level(),
            apply_override(Level::best(), &v),
            "{ENV_OVERRIDE}={v}"
        );
    }
    assert_eq!(
        Kernels::for_level(Level::Scalar).map(|k| k.name()),
        Some("scalar")
    );
    // one write, as every progress line here: scripts/test-aarch64.sh greps for it, and eprintln!
    // writes its pieces one by one (another test's "ok" once landed inside this line)
    say(&format!("selected: {} ({})", k.level(), k.name()));
}

fn close(got: f32, want: f32, abs: f32, rel: f32) -> bool {
    (got - want).abs() <= abs.max(rel * want.abs())
}

/// Softmax: level vs scalar within 1e-6 absolute or 1e-5 relative; scalar vs
/// f64 within 2e-6 absolute.
fn check_softmax(k: Kernels) {
    let s = Kernels::scalar();
    let check = |x: &[f32], row_len: usize| -> Result<(), TestCaseError> {
        let (mut got, mut want) = (x.to_vec(), x.to_vec());
        k.softmax_rows(&mut got, row_len);
        s.softmax_rows(&mut want, row_len);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            prop_assert!(
                close(g, w, 1e-6, 1e-5),
                "[{i}] {g} vs {w} (row_len {row_len})"
            );
        }
        for (row, out) in x.chunks(row_len.max(1)).zip(want.chunks(row_len.max(1))) {
            let m = row
                .iter()
                .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
            let sum: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
            for (&v, &o) in row.iter().zip(out) {
                let p = (f64::from(v) - m).exp() / sum;
                prop_assert!((f64::from(o) - p).abs() <= 2e-6, "{o} vs f64 {p}");
            }
        }
        Ok(())
    };
    for len in TAIL_LENS {
        check(&vals(3 * len, 10.0), len.max(1)).unwrap();
    }
    let mut masked = vals(20, 5.0);
    masked[3] = f32::NEG_INFINITY;
    masked[17] = f32::NEG_INFINITY;
    check(&masked, 20).unwrap();
    let strat = (1usize..300, 1usize..4).prop_flat_map(|(len, rows)| {
        (Just(len), prop::collection::vec(-30.0f32..30.0, len * rows))
    });
    runner(128).run(&strat, |(len, x)| check(&x, len)).unwrap();
}
level_tests!(softmax, check_softmax);

/// Softmax down the columns ([`Kernels::exp_columns`], then the division):
/// against scalar and f64, every column count to 33 and a few row counts,
/// then random shapes.
fn check_exp_columns(k: Kernels) {
    let check = |x: &[f32], cols: usize| -> Result<(), TestCaseError> {
        let rows = x.len() / cols;
        let (mut got, mut sums) = (x.to_vec(), vec![0.0; cols]);
        k.exp_columns(&mut got, cols, &mut sums);
        let (mut want, mut want_sums) = (x.to_vec(), vec![0.0; cols]);
        Kernels::scalar().exp_columns(&mut want, cols, &mut want_sums);
        for j in 0..cols {
            prop_assert!(close(sums[j], want_sums[j], 1e-6, 1e-5), "sum {j}");
            let col = (0..rows).map(|i| f64::from(x[i * cols + j]));
            let m = col.clone().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = col.map(|v| (v - m).exp()).sum();
            for i in 0..rows {
                let (g, w) = (got[i * cols + j], want[i * cols + j]);
                prop_assert!(close(g, w, 1e-6, 1e-5), "[{i}][{j}] {g} vs {w}");
                let p = (f64::from(x[i * cols + j]) - m).exp() / sum;
                let q = f64::from(g) / f64::from(sums[j]);
                prop_assert!((q - p).abs() <= 2e-6, "[{i}][{j}] {q} vs f64 {p}");
            }
        }
        Ok(())
    };
    for cols in TAIL_LENS.filter(|&c| c > 0) {
        for rows in [1, 3, 17] {
            check(&vals(rows * cols, 10.0), cols).unwrap();
        }
    }
    let strat = (1usize..70, 1usize..40).prop_flat_map(|(cols, rows)| {
        (
            Just(cols),
            prop::collection::vec(-30.0f32..30.0, cols * rows),
        )
    });
    runner(64).run(&strat, |(cols, x)| check(&x, cols)).unwrap();
}
level_tests!(exp_columns, check_exp_columns);

/// Element-wise sum and the transposing sum: exact (one rounding each, as
/// scalar), every length to 33, and transposes with whole 8 × 8 blocks,
/// edges in either dimension, and both.
fn check_add(k: Kernels) {
    for len in TAIL_LENS {
        let (a, b) = (vals(len, 10.0), vals(len + 1, 3.0));
        let mut got = vec![f32::NAN; len];
        k.add(&a, &b[1..], &mut got);
        let want: Vec<f32> = a.iter().zip(&b[1..]).map(|(x, y)| x + y).collect();
        assert_eq!(got, want, "add, len {len}");
    }
    for (c, hw) in [
        (8, 8),
        (16, 64),
        (13, 19),
        (3, 5),
        (24, 17),
        (9, 32),
        (256, 24),
    ] {
        let src = vals(c * hw, 4.0);
        let base = vals(c * hw + 3, 2.0);
        let mut got = base[3..].to_vec();
        k.add_transposed(&src, c, hw, &mut got);
        for p in 0..hw {
            for ch in 0..c {
                let want = base[3 + p * c + ch] + src[ch * hw + p];
                assert_eq!(
                    got[p * c + ch],
                    want,
                    "add_transposed c {c} hw {hw} ({p}, {ch})"
                );
            }
        }
    }
}
level_tests!(add, check_add);

/// Depthwise convolution against an f64 direct sum (shapes with channel
/// tails, stride 2, dilation 2 and 4, padding larger and smaller than the
/// window's reach); within 1e-5 relative to the sum of |terms|.
fn check_depthwise(k: Kernels) {
    for (h, w, c, kk, stride, pad, dilation) in [
        (7, 9, 16, 3, 1, 1, 1),
        (8, 8, 48, 3, 2, 1, 1),
        (6, 5, 21, 3, 1, 2, 2),
        (9, 9, 40, 3, 1, 4, 4),
        (5, 7, 3, 1, 1, 0, 1),
        (4, 4, 33, 3, 1, 0, 1),
    ] {
        let span = dilation * (kk - 1) + 1;
        let (oh, ow) = (
            (h + 2 * pad - span) / stride + 1,
            (w + 2 * pad - span) / stride + 1,
        );
        let s = Depthwise {
            h,
            w,
            c,
            k: kk,
            stride,
            pad,
            dilation,
            oh,
            ow,
        };
        let (x, taps, bias) = (vals(h * w * c, 3.0), vals(kk * kk * c, 1.0), vals(c, 0.5));
        let mut got = vec![f32::NAN; oh * ow * c];
        k.depthwise(&x, &taps, &bias, s, &mut got);
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let (mut sum, mut mag) = (f64::from(bias[ch]), f64::from(bias[ch]).abs());
                    for ky in 0..kk {
                        for kx in 0..kk {
                            let iy = (oy * stride + ky * dilation) as isize - pad as isize;
                            let ix = (ox * stride + kx * dilation) as isize - pad as isize;
                            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                continue;
                            }
                            let t = f64::from(x[(iy as usize * w + ix as usize) * c + ch])
                                * f64::from(taps[(ky * kk + kx) * c + ch]);
                            sum += t;
                            mag += t.abs();
                        }
                    }
                    let g = f64::from(got[(oy * ow + ox) * c + ch]);
                    assert!(
                        (g - sum).abs() <= 1e-5 * mag.max(1.0),
                        "depthwise {s:?} at ({oy}, {ox}, {ch}): {g} vs {sum}"
                    );
                }
            }
        }
    }
}
level_tests!(depthwise, check_depthwise);

/// Softmax over interleaved groups: against scalar and f64 at the 8- and
/// 16-lane widths (fixed-size paths) and others (the generic path), with
/// `-inf` entries, then random shapes.
fn check_softmax_interleaved(k: Kernels) {
    let check = |x: &[f32], groups: usize, lanes: usize| -> Result<(), TestCaseError> {
        let (mut got, mut want) = (x.to_vec(), x.to_vec());
        k.softmax_interleaved(&mut got, groups, lanes);
        Kernels::scalar().softmax_interleaved(&mut want, groups, lanes);
        for (r, row) in x.chunks(groups * lanes).enumerate() {
            for l in 0..lanes {
                let col = (0..groups).map(|g| f64::from(row[g * lanes + l]));
                let m = col.clone().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = col.map(|v| (v - m).exp()).sum();
                for g in 0..groups {
                    let at = r * groups * lanes + g * lanes + l;
                    let p = (f64::from(x[at]) - m).exp() / sum;
                    let (gv, wv) = (got[at], want[at]);
                    prop_assert!(close(gv, wv, 1e-6, 1e-5), "[{at}] {gv} vs {wv}");
                    prop_assert!((f64::from(gv) - p).abs() <= 2e-6, "[{at}] {gv} vs f64 {p}");
                }
            }
        }
        Ok(())
    };
    for lanes in [8, 16, 1, 3, 5] {
        for groups in [1, 2, 7, 9] {
            check(&vals(3 * groups * lanes, 10.0), groups, lanes).unwrap();
        }
    }
    let mut masked = vals(7 * 8 * 2, 5.0);
    masked[3] = f32::NEG_INFINITY;
    masked[60] = f32::NEG_INFINITY;
    check(&masked, 7, 8).unwrap();
    let strat = (
        1usize..10,
        prop::sample::select(vec![8usize, 16, 4]),
        1usize..5,
    )
        .prop_flat_map(|(groups, lanes, rows)| {
            (
                Just(groups),
                Just(lanes),
                prop::collection::vec(-30.0f32..30.0, groups * lanes * rows),
            )
        });
    runner(64)
        .run(&strat, |(groups, lanes, x)| check(&x, groups, lanes))
        .unwrap();
}
level_tests!(softmax_interleaved, check_softmax_interleaved);

/// `DynamicQuantizeLinear`: the same scale, zero point and codes as the
/// scalar reference, bit for bit, at every length (vector tails), with
/// NaN, huge values, all-zero and one-signed inputs.
fn check_quantize(k: Kernels) {
    let s = Kernels::scalar();
    let check = |x: &[f32]| -> Result<(), TestCaseError> {
        let (mut got, mut want) = (vec![0i8; x.len()], vec![0i8; x.len()]);
        let (g, w) = (
            k.quantize_dynamic(x, &mut got),
            s.quantize_dynamic(x, &mut want),
        );
        prop_assert_eq!(g.scale.to_bits(), w.scale.to_bits(), "scale");
        prop_assert_eq!(g.zero_point, w.zero_point, "zero point");
        prop_assert_eq!(got, want, "codes");
        Ok(())
    };
    for len in (0..=70).chain([255, 256, 257]) {
        check(&vals(len, 3.0)).unwrap();
        let positive: Vec<f32> = vals(len, 3.0).iter().map(|v| v.abs()).collect();
        check(&positive).unwrap();
        check(&vec![0.0; len]).unwrap();
    }
    let mut odd = vals(41, 2.0);
    odd[5] = f32::NAN;
    odd[17] = 3e7;
    odd[33] = -1e-30;
    check(&odd).unwrap();
    let strat = prop::collection::vec(-50.0f32..50.0, 0..600);
    runner(128).run(&strat, |x| check(&x)).unwrap();
}
level_tests!(quantize, check_quantize);

/// LayerNorm: level vs scalar within 1e-5 · (1 + |γ·z| + |β|).
fn check_layer_norm(k: Kernels) {
    let s = Kernels::scalar();
    let check = |x: &[f32], gamma: &[f32], beta: &[f32]| -> Result<(), TestCaseError> {
        let (mut got, mut want) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        k.layer_norm(x, gamma, beta, 1e-6, &mut got);
        s.layer_norm(x, gamma, beta, 1e-6, &mut want);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let j = i % gamma.len();
            let tol = 1e-5 * (1.0 + (w - beta[j]).abs() + beta[j].abs());
            prop_assert!((g - w).abs() <= tol, "[{i}] {g} vs {w}");
        }
        Ok(())
    };
    for dim in 1..=33 {
        let x = vals(2 * dim, 4.0);
        check(&x, &vals(dim, 2.0), &vals(dim + 1, 1.0)[1..]).unwrap();
    }
    check(&[], &[1.0; 5], &[0.0; 5]).unwrap();
    let strat = (1usize..300, 1usize..4).prop_flat_map(|(dim, rows)| {
        let v = |n| prop::collection::vec(-8.0f32..8.0, n);
        (v(dim * rows), v(dim), v(dim))
    });
    runner(128)
        .run(&strat, |(x, g, b)| check(&x, &g, &b))
        .unwrap();
}
level_tests!(layer_norm, check_layer_norm);

/// erf and GELU: level vs scalar within 2.5e-7 · max(1, |x|) (a few ULP);
/// the scalar GELU vs f64 within 2.5e-7 · max(1, |x|).
fn check_erf_gelu(k: Kernels) {
    let s = Kernels::scalar();
    let check = |x: &[f32]| -> Result<(), TestCaseError> {
        for gelu in [false, true] {
            let (mut got, mut want) = (x.to_vec(), x.to_vec());
            if gelu {
                k.gelu(&mut got);
                s.gelu(&mut want);
            } else {
                k.erf(&mut got);
                s.erf(&mut want);
            }
            for ((&g, &w), &v) in got.iter().zip(&want).zip(x) {
                let tol = 2.5e-7 * v.abs().max(1.0);
                prop_assert!((g - w).abs() <= tol, "gelu {gelu}: f({v}) = {g} vs {w}");
                if gelu {
                    let v64 = f64::from(v);
                    let r = 0.5 * v64 * (1.0 + erf64(v64 / std::f64::consts::SQRT_2));
                    prop_assert!(
                        (f64::from(w) - r).abs() <= f64::from(tol),
                        "gelu({v}) vs f64"
                    );
                }
            }
        }
        Ok(())
    };
    for len in TAIL_LENS {
        check(&vals(len, 5.0)).unwrap();
    }
    check(&[
        0.0, -0.0, 0.8, -0.8, 0.800_001, 4.0, -4.0, 9.0, -9.0, 1e-30, -1e-30,
    ])
    .unwrap();
    let strat = prop::collection::vec(-8.0f32..8.0, 0..200);
    runner(128).run(&strat, |x| check(&x)).unwrap();
}
level_tests!(erf_gelu, check_erf_gelu);

/// Resize: bit-identical to `resize::bilinear` on every level.
fn check_resize(k: Kernels) {
    let check = |src: &[f32], (sh, sw): (usize, usize), (dh, dw): (usize, usize)| {
        let (ys, xs) = (crate::resize::axis(sh, dh), crate::resize::axis(sw, dw));
        let mut want = vec![0.0; dh * dw];
        crate::resize::bilinear(src, sw, &ys, &xs, &mut want, |v| v);
        let mut got = vec![f32::NAN; dh * dw];
        let mut scratch = vec![0.0; 2 * dw];
        k.resize_bilinear(src, sw, (&ys, &xs), &mut got, &mut scratch);
        let same = got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits());
        prop_assert!(same, "{sh}x{sw} -> {dh}x{dw}: {got:?} vs {want:?}");
        Ok(())
    };
    for dw in TAIL_LENS.skip(1) {
        check(&vals(3 * 5, 1.0), (3, 5), (7, dw)).unwrap();
    }
    check(&vals(16 * 16, 3.0), (16, 16), (64, 64)).unwrap();
    check(&vals(64 * 64, 3.0), (64, 64), (16, 16)).unwrap();
    check(&[2.5], (1, 1), (1, 1)).unwrap();
    let strat =
        (1usize..20, 1usize..20, 1usize..40, 1usize..40).prop_flat_map(|(sh, sw, dh, dw)| {
            (
                prop::collection::vec(-5.0f32..5.0, sh * sw),
                Just((sh, sw)),
                Just((dh, dw)),
            )
        });
    runner(64)
        .run(&strat, |(src, s, d)| check(&src, s, d))
        .unwrap();
}
level_tests!(resize, check_resize);
