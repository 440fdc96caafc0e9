//! The frame around the GEMM kernels: what every level shares. Each ISA file
//! implements the micro-kernel traits below on its capability token with
//! SIMD bodies that handle *full* tiles only; the generic drivers here split
//! the work and hand partial tiles through zero-padded stack buffers, so no
//! ISA file deals with a remainder (the row operations' frame is
//! `rows.rs`).

use super::pack::{ActQuant, PackedB, PackedI8, KB, NR};

/// The most rows any f32 or int8 micro-kernel computes at once.
pub(crate) const MAX_MR: usize = 12;
/// The most f32 lanes of any level (tails are padded to this).
pub(crate) const MAX_LANES: usize = 16;
/// Rows of `A` per block: the block stays in L2 while the panels stream.
const MC: usize = 48;
/// Rows of `B` (columns of `A`) per block of the f32 GEMMs: a `KC × NR`
/// panel block is 16 KiB.
const KC: usize = 256;

/// Calls the micro-kernel monomorphized for `rows`: `by_rows!(rows,
/// kernel, args; 1 2 … MR−1; MR)` is `match rows { 1 => kernel::<1>(args),
/// …, _ => kernel::<MR>(args) }` (the ISA files' tile functions; callers
/// check `1 ≤ rows ≤ MR` first).
macro_rules! by_rows {
    ($rows:expr, $kernel:ident, $args:expr; $($r:literal)*; $last:literal) => {
        match $rows {
            $($r => $kernel::<$r>($args),)*
            _ => $kernel::<$last>($args),
        }
    };
}
pub(crate) use by_rows;

/// An f32 GEMM micro-kernel computing `rows ≤ MR` rows × [`NR`] columns.
pub(crate) trait F32Gemm: Copy {
    /// Rows per full tile.
    const MR: usize;
    /// What runs, e.g. `avx2_fma_gemm_f32_6x16`.
    const NAME: &'static str;
    /// `c[r·ldc + j] = Σ_p a[r·rs + p·cs] · b[p·ldb + j] + bias[j]` (`+
    /// c[r·ldc + j]` first when `accumulate`), for `r < rows`, `j < NR`:
    /// `A` by row and column strides (row-major `(lda, 1)`, transposed `(1,
    /// lda)`), `B` sixteen columns of rows `ldb` apart (a packed panel:
    /// `ldb = NR`). Implementations assert [`f32_tile_fits`].
    #[allow(clippy::too_many_arguments)]
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
    );
}

/// `A` of an f32 tile: element `(r, p)` at `data[r·rs + p·cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StridedA<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> StridedA<'a> {
    /// Row-major rows `lda` apart.
    pub fn rows(data: &'a [f32], lda: usize) -> Self {
        StridedA {
            data,
            rs: lda,
            cs: 1,
        }
    }

    /// The view from row `i` on.
    fn skip_rows(self, i: usize) -> Self {
        StridedA {
            data: &self.data[(i * self.rs).min(self.data.len())..],
            ..self
        }
    }
}

/// The f32 micro-kernels' arguments, as raw parts for the `unsafe fn`
/// bodies: `(k, a, rs, cs, b, ldb, c, ldc, bias or null, accumulate)`.
pub(crate) type F32Args = (
    usize,
    *const f32,
    usize,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    *const f32,
    bool,
);

/// Whether an f32 tile call stays inside its slices (the ISA kernels' safety
/// precondition, checked once per tile).
pub(crate) fn f32_tile_fits(
    mr: usize,
    rows: usize,
    k: usize,
    a: &StridedA<'_>,
    b: (usize, usize),
    c: (usize, usize),
) -> bool {
    let (b_len, ldb) = b;
    let (c_len, ldc) = c;
    // saturating: an overflow reads as out of bounds
    let last = |n: usize, s: usize| n.saturating_sub(1).saturating_mul(s);
    let a_last = last(rows, a.rs).saturating_add(last(k, a.cs));
    let b_end = last(k, ldb).saturating_add(NR);
    (1..=mr).contains(&rows)
        && (k == 0 || a_last < a.data.len())
        && ldb >= NR
        && (k == 0 || b_end <= b_len)
        && ldc >= NR
        && c_len >= (rows - 1) * ldc + NR
}

/// Checks an f32 tile call with [`f32_tile_fits`] (panics naming `isa`
/// when it does not fit) and returns its raw parts for the ISA body: the
/// shared first half of every SIMD [`F32Gemm::tile`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn f32_tile_args(
    isa: &str,
    mr: usize,
    rows: usize,
    k: usize,
    a: StridedA<'_>,
    (b, ldb): (&[f32], usize),
    (c, ldc): (&mut [f32], usize),
    bias: Option<&[f32; NR]>,
    accumulate: bool,
) -> F32Args {
    let fits = f32_tile_fits(mr, rows, k, &a, (b.len(), ldb), (c.len(), ldc));
    assert!(fits, "{isa} gemm_f32 tile out of bounds");
    let bias = bias.map_or(std::ptr::null(), |b| b.as_ptr());
    let (ap, bp, cp) = (a.data.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    (k, ap, a.rs, a.cs, bp, ldb, cp, ldc, bias, accumulate)
}

/// An int8 micro-kernel: `rows ≤ MR` rows × [`NR`] columns of exact i32 sums.
pub(crate) trait I8Gemm: Copy {
    /// Rows per full tile.
    const MR: usize;
    /// The k-group of the panels it reads ([`super::I8Layout::group`]).
    const GROUP: usize;
    /// What runs, e.g. `neon_dot_gemm_i8_4x16`.
    const NAME: &'static str;
    /// For `r < rows`, `j < NR`: `out[r·NR + j] = Σ_{p < 16·kb} A[r][p] ·
    /// B[p][j]`, the panel in this kernel's layout; block `b < kb_full` of
    /// row `r` is `a[r·lda + 16b ..][..16]`, the block after it (when
    /// `kb > kb_full`) is `tail[16r..][..16]`; `col_sums` are the panel's
    /// `Σ_p B[p][j]` (zero-padded), for kernels that bias `A`.
    /// Implementations assert [`i8_tile_fits`].
    #[allow(clippy::too_many_arguments)]
    fn tile(
        self,
        rows: usize,
        kb_full: usize,
        kb: usize,
        a: &[i8],
        lda: usize,
        tail: &[i8; MAX_MR * KB],
        panel: &[i8],
        col_sums: &[i32; NR],
        out: &mut [i32; MAX_MR * NR],
    );
}

/// Whether an int8 tile call stays inside its slices.
pub(crate) fn i8_tile_fits(
    mr: usize,
    rows: usize,
    kb_full: usize,
    kb: usize,
    a: (usize, usize),
    panel: usize,
) -> bool {
    let (a_len, lda) = a;
    (1..=mr.min(MAX_MR)).contains(&rows)
        && (kb == kb_full || kb == kb_full + 1)
        && lda >= kb_full * KB
        && a_len >= (rows - 1) * lda + kb_full * KB
        && panel >= kb * KB * NR
}

/// `C[m×n] (+)= A[m×k] · B + bias`, tiled over a [`F32Gemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32<K: F32Gemm>(
    kern: K,
    m: usize,
    a: &[f32],
    b: &PackedB,
    bias: Option<&[f32]>,
    c: &mut [f32],
    accumulate: bool,
) {
    let (k, n) = (b.k(), b.n());
    assert_eq!(a.len(), m * k, "gemm_f32: a is not m×k");
    assert_eq!(c.len(), m * n, "gemm_f32: c is not m×n");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "gemm_f32: one bias per column");
    }
    let a = StridedA::rows(a, k);
    tiles(
        kern,
        (m, k, n),
        a,
        |jp| (b.panel(jp), NR),
        bias,
        (c, n),
        accumulate,
    );
}

/// `C[m×n] = A · B` for `A` by strides (`m × k`, see [`StridedA`]) and `B`
/// row-major `k × n` with rows `ldb` apart, read in place (no packing):
/// for operands that change every call and would be copied only to be read
/// once. Columns past the last whole panel of 16 go through a zero-padded
/// stack copy, a block of `k` at a time.
pub(crate) fn gemm_f32_strided<K: F32Gemm>(
    kern: K,
    (m, k, n): (usize, usize, usize),
    a: StridedA<'_>,
    (b, ldb): (&[f32], usize),
    c: &mut [f32],
) {
    assert!(ldb >= n, "gemm_f32_strided: b rows overlap");
    assert!(
        k == 0 || n == 0 || b.len() >= (k - 1) * ldb + n,
        "gemm_f32_strided: b is not k×n"
    );
    assert_eq!(c.len(), m * n, "gemm_f32_strided: c is not m×n");
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        let last = (m - 1)
            .saturating_mul(a.rs)
            .saturating_add((k - 1).saturating_mul(a.cs));
        assert!(last < a.data.len(), "gemm_f32_strided: a is not m×k");
    }
    let n_full = n - n % NR;
    let whole = |jp: usize| (&b[(jp * NR).min(b.len())..], ldb);
    tiles(kern, (m, k, n_full), a, whole, None, (&mut *c, n), false);
    if n_full == n {
        return;
    }
    let cols = n - n_full;
    let mut panel = [0.0f32; KC * NR];
    let mut p0 = 0;
    loop {
        let kc = KC.min(k - p0);
        for p in 0..kc {
            panel[p * NR..][..cols].copy_from_slice(&b[(p0 + p) * ldb + n_full..][..cols]);
        }
        let a_block = StridedA {
            data: &a.data[(p0 * a.cs).min(a.data.len())..],
            ..a
        };
        let tail = |_| (&panel[..], NR);
        let c_tail = (&mut c[n_full..], n);
        tiles(kern, (m, kc, cols), a_block, tail, None, c_tail, p0 > 0);
        p0 += kc;
        if p0 >= k {
            break;
        }
    }
}

/// The tiling shared by the f32 GEMMs: `panel(jp)` gives columns `jp·NR..`
/// of `B` and their row stride. `k` is cut into blocks of [`KC`] rows of
/// `B`, so that a long product (`P·V` over 4096 image rows) keeps its
/// block of `B` and `A` in L2 while every tile of the block reads them,
/// instead of streaming all of `A` again for each panel.
#[allow(clippy::too_many_arguments)]
fn tiles<'b, K: F32Gemm>(
    kern: K,
    (m, k, n): (usize, usize, usize),
    a: StridedA<'_>,
    panel: impl Fn(usize) -> (&'b [f32], usize),
    bias: Option<&[f32]>,
    (c, ldc): (&mut [f32], usize),
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let mut p0 = 0;
    loop {
        let kc = KC.min(k - p0);
        // the first block writes (or accumulates onto) `c` and adds the
        // bias, the others accumulate
        let first = p0 == 0;
        let a_block = StridedA {
            data: &a.data[(p0 * a.cs).min(a.data.len())..],
            ..a
        };
        for i_block in (0..m).step_by(MC) {
            let block_end = (i_block + MC).min(m);
            for jp in 0..n.div_ceil(NR) {
                let j0 = jp * NR;
                let cols = NR.min(n - j0);
                let mut bias_pad = [0.0f32; NR];
                if let (Some(bias), true) = (bias, first) {
                    bias_pad[..cols].copy_from_slice(&bias[j0..j0 + cols]);
                }
                let bias_pad = bias.filter(|_| first).map(|_| &bias_pad);
                let (b, ldb) = panel(jp);
                let b = (&b[(p0 * ldb).min(b.len())..], ldb);
                let acc = accumulate || !first;
                for i in (i_block..block_end).step_by(K::MR) {
                    let rows = K::MR.min(block_end - i);
                    let a_tile = a_block.skip_rows(i);
                    if cols == NR {
                        let c_tile = &mut c[i * ldc + j0..];
                        kern.tile(rows, kc, a_tile, b, c_tile, ldc, bias_pad, acc);
                    } else {
                        let mut buf = [0.0f32; MAX_MR * NR];
                        for r in 0..rows {
                            let src = &c[(i + r) * ldc + j0..][..cols];
                            buf[r * NR..][..cols].copy_from_slice(src);
                        }
                        kern.tile(rows, kc, a_tile, b, &mut buf, NR, bias_pad, acc);
                        for r in 0..rows {
                            c[(i + r) * ldc + j0..][..cols].copy_from_slice(&buf[r * NR..][..cols]);
                        }
                    }
                }
            }
        }
        p0 += kc;
        if p0 >= k {
            break;
        }
    }
}

/// Runs the int8 tiles of `A[m×k] · B` and hands each finished tile to
/// `emit(row, first_col, cols, sums)` (`sums[r·NR + j]` for the tile's rows).
pub(crate) fn gemm_i8<K: I8Gemm>(
    kern: K,
    m: usize,
    a: &[i8],
    b: &PackedI8,
    mut emit: impl FnMut(usize, usize, usize, usize, &[i32; MAX_MR * NR]),
) {
    let (k, n) = (b.k(), b.n());
    assert_eq!(
        b.layout().group,
        K::GROUP,
        "gemm_i8: B packed for another level"
    );
    assert_eq!(a.len(), m * k, "gemm_i8: a is not m×k");
    let kb = b.kp() / KB;
    let kb_full = k / KB;
    let k_tail = k - kb_full * KB;
    // once per call: a tile writes the first `rows` rows of `out` and
    // reads the first `rows` rows of `tail`, whose padding stays zero
    let mut tail = [0i8; MAX_MR * KB];
    let mut out = [0i32; MAX_MR * NR];
    for i_block in (0..m).step_by(MC) {
        let block_end = (i_block + MC).min(m);
        for jp in 0..n.div_ceil(NR) {
            let j0 = jp * NR;
            let cols = NR.min(n - j0);
            let panel = b.panel(jp);
            let mut col_sums = [0i32; NR];
            col_sums[..cols].copy_from_slice(&b.col_sums()[j0..j0 + cols]);
            for i in (i_block..block_end).step_by(K::MR) {
                let rows = K::MR.min(block_end - i);
                for r in 0..rows {
                    let row = &a[(i + r) * k..][..k];
                    tail[r * KB..][..k_tail].copy_from_slice(&row[kb_full * KB..]);
                }
                let a_rows = &a[i * k..];
                kern.tile(
                    rows, kb_full, kb, a_rows, k, &tail, panel, &col_sums, &mut out,
                );
                emit(i, j0, rows, cols, &out);
            }
        }
    }
}

/// `C[m×n] = A · B` exactly, in i32.
pub(crate) fn gemm_i8_i32<K: I8Gemm>(kern: K, m: usize, a: &[i8], b: &PackedI8, c: &mut [i32]) {
    let n = b.n();
    assert_eq!(c.len(), m * n, "gemm_i8: c is not m×n");
    gemm_i8(kern, m, a, b, |i, j0, rows, cols, out| {
        for r in 0..rows {
            c[(i + r) * n + j0..][..cols].copy_from_slice(&out[r * NR..][..cols]);
        }
    });
}

/// `out[i][j] = (acc − zp · colsum[j]) as f32 · (a_scale · b_scale[j]) + bias[j]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_i8_f32<K: I8Gemm>(
    kern: K,
    m: usize,
    a: &[i8],
    b: &PackedI8,
    act: ActQuant,
    bias: Option<&[f32]>,
    c: &mut [f32],
) {
    let n = b.n();
    assert_eq!(c.len(), m * n, "gemm_i8: c is not m×n");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "gemm_i8: one bias per column");
    }
    let zp = i32::from(act.zero_point);
    let (sums, scales) = (b.col_sums(), b.scales());
    // the per-column terms of the panel last seen (tiles come panel by
    // panel within a row block), and whole 16-lane rows so the loop
    // vectorizes
    let mut panel = usize::MAX;
    let (mut offset, mut scale, mut add) = ([0i32; NR], [0f32; NR], [0f32; NR]);
    gemm_i8(kern, m, a, b, |i, j0, rows, cols, out| {
        if j0 != panel {
            panel = j0;
            for j in 0..NR {
                let valid = j < cols;
                offset[j] = if valid { zp * sums[j0 + j] } else { 0 };
                scale[j] = if valid {
                    act.scale * scales[j0 + j]
                } else {
                    0.0
                };
                add[j] = match bias {
                    Some(b) if valid => b[j0 + j],
                    _ => 0.0,
                };
            }
        }
        for (r, acc) in out.chunks_exact(NR).take(rows).enumerate() {
            let mut row = [0f32; NR];
            for j in 0..NR {
                row[j] = (acc[j] - offset[j]) as f32 * scale[j] + add[j];
            }
            let dst = &mut c[(i + r) * n + j0..];
            if cols == NR {
                // a fixed-size copy: inlined, not a `memcpy` call per row
                dst[..NR].copy_from_slice(&row);
            } else {
                dst[..cols].copy_from_slice(&row[..cols]);
            }
        }
    });
}
