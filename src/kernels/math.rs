//! The transcendental functions the kernels share: `exp` and `erf` in f32,
//! their constants (every ISA evaluates the same polynomials, so the levels
//! differ only by FMA rounding), and their scalar forms.
//!
//! - `exp`: Cephes' `expf` (range reduction by `ln 2` split in two, a degree-5
//!   polynomial); ≤ 2 ULP on the range used. Inputs below [`EXP_LO`] give
//!   exactly 0 (so `-inf` padding and masked logits vanish), inputs above
//!   [`EXP_HI`] are clamped to it.
//! - `erf`: two pieces fitted for this crate (least squares on 4000 Chebyshev
//!   nodes against mpmath at 40 digits, coefficients rounded to f32):
//!   `x · P(x²)` for `|x| ≤ 0.8`, `1 − exp(−x²) · Q(|x|)` for `0.8 < |x| ≤ 4`
//!   (and `|x|` clamped to 4 above, where `erf` is 1 in f32). Measured error
//!   against a high-precision reference over `[-6, 6]`: ≤ 1.3e-7 absolute
//!   (about 2 ULP near 1); see the `erf_*` tests.

/// `log2(e)`.
pub(crate) const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2`, high part (exact in few bits so `n · LN2_HI` is exact).
pub(crate) const LN2_HI: f32 = 0.693_359_4;
/// `ln 2`, low part: `ln 2 = LN2_HI + LN2_LO`.
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// Inputs of `exp` above this are clamped to it (keeps `2^n` finite).
pub(crate) const EXP_HI: f32 = 88.0;
/// Inputs of `exp` below this give 0.
pub(crate) const EXP_LO: f32 = -87.336_55;
/// Cephes `expf` polynomial, highest degree first.
pub(crate) const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// Below this `|x|`, `erf(x) = x · P(x²)`.
pub(crate) const ERF_SPLIT: f32 = 0.8;
/// Above this `|x|`, `erf(x) = ±1` in f32.
pub(crate) const ERF_CLAMP: f32 = 4.0;
/// `P` of `erf(x) = x · P(x²)`, highest degree first.
pub(crate) const ERF_P: [f32; 8] = [
    -9.728_41e-6,
    1.128_817_5e-4,
    -8.487_268e-4,
    5.221_261_6e-3,
    -2.686_551_8e-2,
    1.128_378_4e-1,
    -3.761_263_8e-1,
    std::f32::consts::FRAC_2_SQRT_PI,
];
/// `Q` of `erfc(x) = exp(−x²) · Q(x)`, `0.8 < x ≤ 4`, highest degree first.
pub(crate) const ERF_Q: [f32; 12] = [
    -6.246_552e-7,
    1.888_702_7e-5,
    -2.599_586_4e-4,
    2.161_654_2e-3,
    -1.216_569_3e-2,
    4.926_939_3e-2,
    -1.493_287_1e-1,
    3.486_056e-1,
    -6.413_369e-1,
    9.444_943_7e-1,
    -1.111_561_1,
    9.976_865_6e-1,
];

/// Horner's rule, highest degree first, without FMA (the scalar reference).
#[inline]
fn horner(coeffs: &[f32], x: f32) -> f32 {
    coeffs[1..].iter().fold(coeffs[0], |acc, &c| acc * x + c)
}

/// `e^x` in f32 (see the module docs for range and accuracy).
#[inline]
pub fn exp(x: f32) -> f32 {
    if x < EXP_LO || x.is_nan() {
        return if x.is_nan() { x } else { 0.0 };
    }
    let x = x.min(EXP_HI);
    let n = (x * LOG2E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = horner(&EXP_P, r);
    let e = p * (r * r) + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `erf(x)` in f32 (see the module docs for accuracy).
#[inline]
pub fn erf(x: f32) -> f32 {
    let ax = x.abs();
    if ax <= ERF_SPLIT {
        x * horner(&ERF_P, x * x)
    } else {
        let ax = ax.min(ERF_CLAMP);
        let y = 1.0 - exp(-(ax * ax)) * horner(&ERF_Q, ax);
        y.copysign(x)
    }
}

/// GELU in the erf form of the exported graph:
/// `0.5 · x · (1 + erf(x / √2))` (not the tanh approximation).
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}
