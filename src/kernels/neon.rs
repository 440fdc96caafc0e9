//! aarch64 NEON: the capability tokens of the three NEON levels, the f32
//! GEMM micro-kernel and the baseline int8 one (`sdot` and `smmla` are in
//! `neon_i8.rs`, the row operations in `neon_rows.rs`).
//!
//! - f32: 6 × 16 tile, 24 of the 32 q registers accumulate; per `k` step
//!   four panel loads and 24 `fmla` by scalar.
//! - int8 (`Neon` level): 4 × 16 tile computed as four 4 × 4 blocks; per
//!   16-byte `k` block of a row and a column, `smull` + `smull2` (i8 × i8 →
//!   i16, exact: |product| ≤ 16384) and two `sadalp` (pairwise add into i32).
//!   Panels in k-groups of 16.

use std::arch::aarch64::*;

use super::frame::{
    by_rows, f32_tile_args, i8_tile_fits, F32Args, F32Gemm, I8Gemm, StridedA, MAX_MR,
};
use super::pack::{KB, NR};

/// Proof that this CPU has NEON: only [`Neon::new`] makes one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Neon(());

/// Proof of NEON with the dot-product extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NeonDot(pub(crate) Neon);

/// Proof of NEON with dot product and i8mm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NeonI8mm(pub(crate) NeonDot);

impl Neon {
    /// The token, if the CPU has NEON.
    pub(crate) fn new() -> Option<Self> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Neon(()))
    }
}

impl NeonDot {
    /// The token, if the CPU has NEON and `dotprod`.
    pub(crate) fn new() -> Option<Self> {
        let neon = Neon::new()?;
        std::arch::is_aarch64_feature_detected!("dotprod").then_some(NeonDot(neon))
    }

    /// The NEON token this one includes.
    pub(crate) fn neon(self) -> Neon {
        self.0
    }
}

impl NeonI8mm {
    /// The token, if the CPU has NEON, `dotprod` and `i8mm`.
    pub(crate) fn new() -> Option<Self> {
        let dot = NeonDot::new()?;
        std::arch::is_aarch64_feature_detected!("i8mm").then_some(NeonI8mm(dot))
    }

    /// The NEON token this one includes.
    pub(crate) fn neon(self) -> Neon {
        self.0 .0
    }
}

impl F32Gemm for Neon {
    const MR: usize = 6;
    const NAME: &'static str = "neon_gemm_f32_6x16";

    fn tile(
        self,
        rows: usize,
        k: usize,
        a: StridedA<'_>,
        b: (&[f32], usize),
        c: &mut [f32],
        ldc: usize,
        bias: Option<&[f32; NR]>,
        accumulate: bool,
    ) {
        let mr = <Self as F32Gemm>::MR;
        let args = f32_tile_args("neon", mr, rows, k, a, b, (c, ldc), bias, accumulate);
        // SAFETY: `self` proves NEON;
        // `f32_tile_fits` checked that the `rows` rows of `a` (k each, at
        // its strides), the `k` rows of `b` and the `rows` rows of 16 in `c`
        // are in bounds, and `bias` is null or 16 floats.
        unsafe { by_rows!(rows, gemm_f32_6x16, args; 1 2 3 4 5; 6) }
    }
}

/// The dot-product levels run the NEON f32 GEMM.
macro_rules! f32_via_neon {
    ($token:ty) => {
        impl F32Gemm for $token {
            const MR: usize = <Neon as F32Gemm>::MR;
            const NAME: &'static str = <Neon as F32Gemm>::NAME;

            fn tile(
                self,
                rows: usize,
                k: usize,
                a: StridedA<'_>,
                b: (&[f32], usize),
                c: &mut [f32],
                ldc: usize,
                bias: Option<&[f32; NR]>,
                accumulate: bool,
            ) {
                let neon = self.neon();
                F32Gemm::tile(neon, rows, k, a, b, c, ldc, bias, accumulate)
            }
        }
    };
}
f32_via_neon!(NeonDot);
f32_via_neon!(NeonI8mm);

/// `R` rows of the f32 tile (see [`F32Gemm::tile`]).
///
/// # Safety
/// NEON must be available; `a` must hold `R` rows of `k` floats at its
/// strides (`rs` between rows, `cs` between columns), `b` `k` rows of 16
/// floats `ldb` apart, `c` `R` rows of 16 floats `ldc` apart, `bias` be
/// null or point to 16 floats.
#[target_feature(enable = "neon")]
unsafe fn gemm_f32_6x16<const R: usize>(args: F32Args) {
    let (k, a, rs, cs, b, ldb, c, ldc, bias, accumulate) = args;
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    for p in 0..k {
        // SAFETY: p < k: row p of the panel (16 floats) is in bounds.
        let bv = unsafe {
            let bp = b.add(p * ldb);
            [
                vld1q_f32(bp),
                vld1q_f32(bp.add(4)),
                vld1q_f32(bp.add(8)),
                vld1q_f32(bp.add(12)),
            ]
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < R rows, p < k: inside `a`.
            let av = unsafe { *a.add(r * rs + p * cs) };
            for (s, &bq) in row.iter_mut().zip(&bv) {
                *s = vfmaq_n_f32(*s, bq, av);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (q, &v) in row.iter().enumerate() {
            let mut v = v;
            if !bias.is_null() {
                // SAFETY: a non-null bias holds 16 floats.
                v = vaddq_f32(v, unsafe { vld1q_f32(bias.add(4 * q)) });
            }
            // SAFETY: row r < R of `c` holds 16 floats.
            unsafe {
                let dst = c.add(r * ldc + 4 * q);
                if accumulate {
                    v = vaddq_f32(vld1q_f32(dst), v);
                }
                vst1q_f32(dst, v);
            }
        }
    }
}

/// The int8 GEMM arguments: `(kb_full, kb, a, lda, tail, panel, out)`.
pub(crate) type I8Args = (
    usize,
    usize,
    *const i8,
    usize,
    *const i8,
    *const i8,
    *mut i32,
);

/// Where row `r`'s block `b` starts: in `a`, or in the tail buffer.
///
/// # Safety
/// `r` and `b` must be inside the tile described by `args` (see
/// [`I8Gemm::tile`]).
#[inline]
pub(crate) unsafe fn block_ptr(args: &I8Args, r: usize, b: usize) -> *const i8 {
    let (kb_full, _, a, lda, tail, _, _) = *args;
    // SAFETY: the caller keeps (r, b) inside the tile: block b < kb_full
    // of row r is in `a`, the block after it in row r of `tail`.
    unsafe {
        if b < kb_full {
            a.add(r * lda + b * KB)
        } else {
            tail.add(r * KB)
        }
    }
}

/// Dispatches a safe int8 tile call to the `R`-row body `$f::<R>` of an
/// int8 micro-kernel with `MR = 4`.
macro_rules! i8_tile_4 {
    ($name:literal, $group:literal, $token:ty, $f:ident) => {
        impl I8Gemm for $token {
            const MR: usize = 4;
            const GROUP: usize = $group;
            const NAME: &'static str = $name;

            fn tile(
                self,
                rows: usize,
                kb_full: usize,
                kb: usize,
                a: &[i8],
                lda: usize,
                tail: &[i8; MAX_MR * KB],
                panel: &[i8],
                _col_sums: &[i32; NR],
                out: &mut [i32; MAX_MR * NR],
            ) {
                let mr = <Self as I8Gemm>::MR;
                let fits = i8_tile_fits(mr, rows, kb_full, kb, (a.len(), lda), panel.len());
                assert!(fits, concat!($name, " tile out of bounds"));
                let args = (
                    kb_full,
                    kb,
                    a.as_ptr(),
                    lda,
                    tail.as_ptr(),
                    panel.as_ptr(),
                    out.as_mut_ptr(),
                );
                // SAFETY: the token proves the features `$f` enables;
                // `i8_tile_fits` checked that the `kb_full` blocks of `rows`
                // rows of `a`, the tail rows and `kb` panel blocks are in
                // bounds; `out` holds MAX_MR ≥ 4 rows of 16.
                unsafe {
                    $crate::kernels::frame::by_rows!(rows, $f, args; 1 2 3; 4)
                }
            }
        }
    };
}
pub(crate) use i8_tile_4;

i8_tile_4!("neon_gemm_i8_smull_4x16", 16, Neon, gemm_i8_smull_4x16);

/// `R` rows of the int8 tile with `smull`/`sadalp`; panel in k-groups of 16.
///
/// # Safety
/// NEON must be available; `args` must describe an in-bounds tile of `R`
/// rows (see [`I8Gemm::tile`]).
#[target_feature(enable = "neon")]
unsafe fn gemm_i8_smull_4x16<const R: usize>(args: I8Args) {
    let (_, kb, _, _, _, panel, out) = args;
    for cg in 0..4 {
        let mut acc = [[vdupq_n_s32(0); 4]; R];
        for b in 0..kb {
            let mut av = [vdupq_n_s8(0); R];
            for (r, v) in av.iter_mut().enumerate() {
                // SAFETY: (r, b) is inside the tile; a block is 16 bytes.
                *v = unsafe { vld1q_s8(block_ptr(&args, r, b)) };
            }
            for c in 0..4 {
                // SAFETY: block b, column 4cg + c of the panel: 16 bytes.
                let bv = unsafe { vld1q_s8(panel.add(b * KB * NR + (cg * 4 + c) * KB)) };
                for (row, &a) in acc.iter_mut().zip(&av) {
                    let lo = vmull_s8(vget_low_s8(a), vget_low_s8(bv));
                    let hi = vmull_high_s8(a, bv);
                    row[c] = vpadalq_s16(vpadalq_s16(row[c], lo), hi);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let s = vpaddq_s32(vpaddq_s32(row[0], row[1]), vpaddq_s32(row[2], row[3]));
            // SAFETY: row r < R of `out` holds 16 i32.
            unsafe { vst1q_s32(out.add(r * NR + cg * 4), s) };
        }
    }
}
