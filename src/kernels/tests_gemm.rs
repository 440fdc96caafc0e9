//! GEMM and transposed-convolution tests on every level.
//!
//! Tolerances: f32 GEMM per element `2 · (k + 3) · ε · S` with
//! `S = Σ_p |a·b| + |bias| + |c|` (the classic `γ_k` bound), for each level
//! against scalar and for scalar against f64; int8 GEMM exact (i32 sums
//! equal, the f32 epilogue bit-identical across levels).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::tests::{level_tests, run, runner, TAIL_LENS};
use super::*;

struct F32Case {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Option<Vec<f32>>,
    c0: Vec<f32>,
}

fn fill(len: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn fill_i8(len: usize, seed: u32) -> Vec<i8> {
    fill(len, seed, 128.0)
        .iter()
        .map(|&v| v.clamp(-128.0, 127.0) as i8)
        .collect()
}

fn check_f32_case(k: Kernels, case: &F32Case, accumulate: bool) -> Result<(), TestCaseError> {
    let F32Case { m, k: kk, n, .. } = *case;
    let packed = PackedB::new(&case.b, kk, n);
    let bias = case.bias.as_deref();
    let run_on = |kern: Kernels| {
        let mut c = case.c0.clone();
        if accumulate {
            kern.gemm_f32_acc(m, &case.a, &packed, bias, &mut c);
        } else {
            kern.gemm_f32(m, &case.a, &packed, bias, &mut c);
        }
        c
    };
    let (got, want) = (run_on(k), run_on(Kernels::scalar()));
    for i in 0..m {
        for j in 0..n {
            let (mut exact, mut mag) = (0.0f64, 0.0f64);
            for p in 0..kk {
                let prod = f64::from(case.a[i * kk + p]) * f64::from(case.b[p * n + j]);
                exact += prod;
                mag += prod.abs();
            }
            let bj = bias.map_or(0.0, |b| f64::from(b[j]));
            let cj = if accumulate {
                f64::from(case.c0[i * n + j])
            } else {
                0.0
            };
            exact += bj + cj;
            mag += bj.abs() + cj.abs();
            let tol = 2.0 * (kk as f64 + 3.0) * f64::from(f32::EPSILON) * mag;
            let (g, w) = (f64::from(got[i * n + j]), f64::from(want[i * n + j]));
            prop_assert!(
                (g - w).abs() <= tol,
                "({i},{j}) m{m} k{kk} n{n}: {g} vs scalar {w}"
            );
            prop_assert!(
                (w - exact).abs() <= tol,
                "({i},{j}): scalar {w} vs f64 {exact}"
            );
        }
    }
    Ok(())
}

fn f32_case(m: usize, k: usize, n: usize, bias: bool, seed: u32) -> F32Case {
    F32Case {
        m,
        k,
        n,
        a: fill(m * k, seed, 2.0),
        b: fill(k * n, seed + 1, 2.0),
        bias: bias.then(|| fill(n, seed + 2, 1.0)),
        c0: fill(m * n, seed + 3, 1.0),
    }
}

/// f32 GEMM: every `m` to 13 and `n` to 33 (all row and column tails), `k`
/// 0, 1 and 7, then random shapes.
fn check_gemm_f32(k: Kernels) {
    for m in 0..=13 {
        for n in TAIL_LENS {
            for kk in [0, 1, 7] {
                let case = f32_case(m, kk, n, (m + n) % 2 == 0, (m * 100 + n * 10 + kk) as u32);
                check_f32_case(k, &case, n % 3 == 0).unwrap();
            }
        }
    }
    // One decoder shape: 7 tokens × 256 → 256, with bias.
    check_f32_case(k, &f32_case(7, 256, 256, true, 7), false).unwrap();
    // `k` over one block of 256 (two and a partial third), with bias, both
    // writing and accumulating, full and partial panels
    for (m, kk, n, acc) in [
        (13, 600, 40, true),
        (5, 513, 17, false),
        (25, 512, 32, false),
    ] {
        check_f32_case(k, &f32_case(m, kk, n, true, 9), acc).unwrap();
    }
    let strat = (
        1usize..30,
        0usize..70,
        1usize..50,
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
    );
    runner(64)
        .run(&strat, |(m, kk, n, bias, acc, seed)| {
            check_f32_case(k, &f32_case(m, kk, n, bias, seed), acc)
        })
        .unwrap();
}
level_tests!(gemm_f32, check_gemm_f32);

/// f32 GEMM with `A` by strides (row-major and transposed, rows padded)
/// and `B` read in place with padded rows: every `m` to 13, `n` 1 to 48
/// (whole panels and a partial one),
/// `k` 0 to 300 (over one block of 256), against scalar and f64 as [`check_gemm_f32`].
fn check_gemm_f32_strided(kern: Kernels) {
    for m in 1..=13 {
        for n in [16, 32, 48, 1, 5, 21] {
            for kk in [0, 1, 7, 33, 300] {
                let seed = (m * 100 + n * 10 + kk) as u32;
                let (a_rm, b) = (fill(m * kk, seed, 2.0), fill(kk * n, seed + 1, 2.0));
                let ldb = n + 5;
                let mut b_pad = vec![f32::NAN; kk * ldb];
                for p in 0..kk {
                    b_pad[p * ldb..][..n].copy_from_slice(&b[p * n..][..n]);
                }
                // transposed: column p of A is row p of the storage, m + 3 apart
                let lda_t = m + 3;
                let mut a_t = vec![f32::NAN; kk * lda_t];
                for r in 0..m {
                    for p in 0..kk {
                        a_t[p * lda_t + r] = a_rm[r * kk + p];
                    }
                }
                let views = [
                    StridedA::rows(&a_rm, kk),
                    StridedA {
                        data: &a_t,
                        rs: 1,
                        cs: lda_t,
                    },
                ];
                let packed = PackedB::new(&b, kk, n);
                let mut want = vec![0.0; m * n];
                Kernels::scalar().gemm_f32(m, &a_rm, &packed, None, &mut want);
                for a in views {
                    for k2 in [kern, Kernels::scalar()] {
                        let mut got = vec![0.0; m * n];
                        k2.gemm_f32_strided((m, kk, n), a, (&b_pad, ldb), &mut got);
                        for i in 0..m {
                            for j in 0..n {
                                let mag: f64 = (0..kk)
                                    .map(|p| f64::from(a_rm[i * kk + p] * b[p * n + j]).abs())
                                    .sum();
                                let tol = 2.0 * (kk as f64 + 3.0) * f64::from(f32::EPSILON) * mag;
                                let (g, w) = (got[i * n + j], want[i * n + j]);
                                assert!(
                                    (f64::from(g) - f64::from(w)).abs() <= tol,
                                    "{} ({i},{j}) m{m} k{kk} n{n} cs {}: {g} vs {w}",
                                    k2.name(),
                                    a.cs
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
level_tests!(gemm_f32_strided, check_gemm_f32_strided);

#[test]
fn repacking_in_place_equals_packing_afresh() {
    let b: Vec<f32> = (0..40 * 37).map(|i| i as f32 - 700.0).collect();
    let mut packed = PackedB::zeros(40, 37);
    let cap = packed.clone();
    for (k, n) in [(40, 37), (3, 17), (0, 5), (16, 16), (40, 37), (7, 1)] {
        packed.repack_with(k, n, |p, j| b[p * n + j]);
        assert_eq!(packed, PackedB::new(&b[..k * n], k, n), "{k}×{n}");
        for (p, j) in (0..k).flat_map(|p| (0..n).map(move |j| (p, j))) {
            assert_eq!(packed.get(p, j), b[p * n + j]);
        }
    }
    assert_eq!(PackedB::zeros(40, 37), cap);
}

#[test]
fn row_and_transposed_repacks_equal_packing_afresh() {
    let src: Vec<f32> = (0..50 * 45).map(|i| i as f32 * 0.5 - 900.0).collect();
    let mut rows = PackedB::zeros(8, 8);
    let mut transposed = PackedB::zeros(8, 8);
    // (k, n, ld, offset): strided and offset views, panel tails, empty
    for (k, n, ld, off) in [
        (40, 37, 45, 3),
        (3, 17, 17, 0),
        (0, 5, 5, 0),
        (16, 16, 20, 4),
        (17, 33, 40, 1),
        (7, 1, 9, 2),
        (40, 37, 45, 0),
    ] {
        let b: Vec<f32> = (0..k * n)
            .map(|i| src[off + (i / n) * ld + i % n])
            .collect();
        rows.repack_rows(&src[off..], ld, k, n);
        assert_eq!(rows, PackedB::new(&b, k, n), "rows {k}×{n} ld {ld}");
        // B = Aᵀ, A being n × k with row j at j·ldt: B[p][j] = A[j][p]
        let ldt = ld.max(k);
        transposed.repack_transposed(&src[off..], ldt, k, n);
        let at: Vec<f32> = (0..k * n)
            .map(|i| src[off + (i % n) * ldt + i / n])
            .collect();
        assert_eq!(transposed, PackedB::new(&at, k, n), "transposed {k}×{n}");
    }
}

#[test]
fn packed_b_from_linear_weight_is_the_transpose() {
    let (n, k) = (5, 3);
    let w = fill(n * k, 1, 1.0);
    let mut wt = vec![0.0; k * n];
    for j in 0..n {
        for p in 0..k {
            wt[p * n + j] = w[j * k + p];
        }
    }
    assert_eq!(
        PackedB::from_linear_weight(&w, n, k),
        PackedB::new(&wt, k, n)
    );
}

fn check_i8_case(
    k: Kernels,
    (m, kk, n): (usize, usize, usize),
    a: &[i8],
    b: &[i8],
    act: ActQuant,
) -> Result<(), TestCaseError> {
    let scales: Vec<f32> = (0..n).map(|j| 0.01 + j as f32 * 1e-3).collect();
    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 1.0).collect();
    let s = Kernels::scalar();
    let (pk, ps) = (k.pack_i8(b, kk, n, &scales), s.pack_i8(b, kk, n, &scales));
    let (mut got, mut want) = (vec![0i32; m * n], vec![0i32; m * n]);
    k.gemm_i8_i32(m, a, &pk, &mut got);
    s.gemm_i8_i32(m, a, &ps, &mut want);
    for i in 0..m {
        for j in 0..n {
            let exact: i64 = (0..kk)
                .map(|p| i64::from(a[i * kk + p]) * i64::from(b[p * n + j]))
                .sum();
            prop_assert_eq!(i64::from(want[i * n + j]), exact, "scalar ({},{})", i, j);
        }
    }
    prop_assert_eq!(&got, &want, "m{} k{} n{}", m, kk, n);
    let (mut gf, mut wf) = (vec![0f32; m * n], vec![0f32; m * n]);
    k.gemm_i8(m, a, &pk, act, Some(&bias), &mut gf);
    s.gemm_i8(m, a, &ps, act, Some(&bias), &mut wf);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(bits(&gf), bits(&wf), "requantized m{} k{} n{}", m, kk, n);
    for i in 0..m {
        for j in 0..n {
            let cs: i64 = (0..kk).map(|p| i64::from(b[p * n + j])).sum();
            let acc = i64::from(want[i * n + j]) - i64::from(act.zero_point) * cs;
            let r = acc as f64 * f64::from(act.scale) * f64::from(scales[j]) + f64::from(bias[j]);
            let tol = 4.0 * f64::from(f32::EPSILON) * (r.abs() + f64::from(bias[j]).abs() + 1e-30);
            prop_assert!(
                (f64::from(wf[i * n + j]) - r).abs() <= tol,
                "epilogue ({i},{j})"
            );
        }
    }
    Ok(())
}

/// int8 GEMM: exact; every `m` to 13, `n` to 33, `k` around the 16-byte
/// blocks; full-range operands (no i16 saturation); then random shapes.
fn check_gemm_i8(k: Kernels) {
    let act = ActQuant {
        scale: 0.05,
        zero_point: -3,
    };
    for m in 0..=13 {
        for n in TAIL_LENS {
            for kk in [0, 1, 15, 16, 17, 33] {
                let seed = (m * 1000 + n * 10 + kk) as u32;
                let (a, b) = (fill_i8(m * kk, seed), fill_i8(kk * n, seed + 1));
                check_i8_case(k, (m, kk, n), &a, &b, act).unwrap();
            }
        }
    }
    // Extremes: every product ±16384 and pair sums of 32768 would saturate
    // an i16 (vpmaddubsw's trap); k = 2048 is the decoder's largest.
    for (av, bv) in [(-128i8, -128i8), (127, -128), (-128, 127), (127, 127)] {
        let (m, kk, n) = (7, 2048, 20);
        check_i8_case(k, (m, kk, n), &vec![av; m * kk], &vec![bv; kk * n], act).unwrap();
    }
    let strat = (
        1usize..20,
        0usize..80,
        1usize..40,
        any::<u32>(),
        any::<i8>(),
    );
    runner(64)
        .run(&strat, |(m, kk, n, seed, zp)| {
            let (a, b) = (fill_i8(m * kk, seed), fill_i8(kk * n, seed ^ 0x55));
            let act = ActQuant {
                scale: 0.02,
                zero_point: zp,
            };
            check_i8_case(k, (m, kk, n), &a, &b, act)
        })
        .unwrap();
}
level_tests!(gemm_i8, check_gemm_i8);

#[test]
#[should_panic(expected = "packed for another level")]
fn gemm_i8_rejects_a_foreign_packing() {
    let b = PackedI8::new(I8Layout { group: 16 }, &[1; 4], 2, 2, &[1.0; 2]);
    let k = Kernels::scalar();
    k.gemm_i8_i32(1, &[1, 2], &b, &mut [0; 2]);
}

/// Transposed 2×2 convolution against the direct formula in f64, with the
/// GEMM bound.
fn check_conv_transpose(k: Kernels) {
    let check = |(c_in, c_out, h, w): (usize, usize, usize, usize), seed: u32| {
        let input = fill(c_in * h * w, seed, 2.0);
        let weight = fill(c_in * c_out * 4, seed + 1, 1.0);
        let bias = fill(c_out, seed + 2, 1.0);
        let conv = ConvTranspose2x2::new(&weight, Some(&bias), c_in, c_out);
        let mut out = vec![f32::NAN; c_out * 4 * h * w];
        let mut scratch = vec![0.0; conv.scratch_len(h, w)];
        k.conv_transpose_2x2(&conv, &input, (h, w), &mut out, &mut scratch);
        for co in 0..c_out {
            for y in 0..2 * h {
                for x in 0..2 * w {
                    let (mut s, mut mag) = (f64::from(bias[co]), f64::from(bias[co]).abs());
                    for ci in 0..c_in {
                        let v = f64::from(input[(ci * h + y / 2) * w + x / 2])
                            * f64::from(weight[((ci * c_out + co) * 2 + y % 2) * 2 + x % 2]);
                        s += v;
                        mag += v.abs();
                    }
                    let got = f64::from(out[(co * 2 * h + y) * 2 * w + x]);
                    let tol = 2.0 * (c_in as f64 + 3.0) * f64::from(f32::EPSILON) * mag;
                    prop_assert!((got - s).abs() <= tol, "({co},{y},{x}): {got} vs {s}");
                }
            }
        }
        Ok(())
    };
    for c_out in 1..=5 {
        check((3, c_out, 2, 3), c_out as u32).unwrap();
    }
    check((32, 8, 4, 4), 9).unwrap();
    check((1, 1, 1, 1), 1).unwrap();
    let strat = (1usize..20, 1usize..10, 1usize..6, 1usize..6, any::<u32>());
    runner(32)
        .run(&strat, |(ci, co, h, w, seed)| check((ci, co, h, w), seed))
        .unwrap();
}
level_tests!(conv_transpose_2x2, check_conv_transpose);

#[test]
fn every_level_is_tested_or_reported() {
    // Keeps `run` honest: a level this CPU runs must produce kernels.
    for &level in Level::ALL {
        assert_eq!(Kernels::for_level(level).is_some(), level.is_available());
        run(level, "for_level", |k| assert!(k.level() <= Level::best()));
    }
}
