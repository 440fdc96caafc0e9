//! The frame around the ISA kernels: what every level shares. Each ISA file
//! implements the traits below on its capability token with SIMD bodies that
//! handle *full* tiles and lanes only; the generic drivers here split the
//! work, hand partial tiles through zero-padded stack buffers and pad the
//! tails of rows, so no ISA file deals with a remainder.

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

/// Row and element-wise operations on slices whose length is a multiple of
/// `LANES` (the frame pads the rest).
pub(crate) trait RowOps: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// The ISA part of the kernel names, e.g. `avx2_fma`.
    const NAME: &'static str;
    /// `max(x)`, `-inf` when empty.
    fn max(self, x: &[f32]) -> f32;
    /// `Σ x`.
    fn sum(self, x: &[f32]) -> f32;
    /// `x ← exp(x − sub)`; returns the sum of the new `x`.
    fn exp_sub_sum(self, x: &mut [f32], sub: f32) -> f32;
    /// `x ← x · s`.
    fn scale(self, x: &mut [f32], s: f32);
    /// `Σ (x − mean)²`.
    fn sq_dev_sum(self, x: &[f32], mean: f32) -> f32;
    /// `out = (x − mean) · inv · gamma + beta` (all the same length).
    fn norm_affine(self, x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]);
    /// `x ← erf(x)`.
    fn erf(self, x: &mut [f32]);
    /// `x ← gelu(x)` (erf form).
    fn gelu(self, x: &mut [f32]);
    /// `out = top · (1 − fy) + bot · fy`, unfused (bit-exact across levels).
    fn lerp(self, top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]);
    /// [`super::quant::act_range`] (any length).
    fn act_range(self, x: &[f32]) -> (f32, f32);
    /// [`super::quant::act_codes`] (any length; `q` as long as `x`).
    fn act_codes(self, x: &[f32], scale: f32, zp: f32, q: &mut [i8]);
    /// `out = a + b` (any length; the three as long).
    fn add(self, a: &[f32], b: &[f32], out: &mut [f32]);
    /// `dst[p][ch] += src[ch][p]` for `src` `c × hw` and `dst` `hw × c`,
    /// row-major (the image embedding from channel-major to pixel-major).
    fn add_transposed(self, src: &[f32], c: usize, hw: usize, dst: &mut [f32]);
}

/// [`RowOps::add`] as plain loops, for each level to compile at its width.
#[inline(always)]
pub(crate) fn add_body(a: &[f32], b: &[f32], out: &mut [f32]) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// [`RowOps::add_transposed`] as plain loops: 8 × 8 blocks (eight 8-float
/// rows read, eight 8-float rows added), the edges element by element.
#[inline(always)]
pub(crate) fn add_transposed_body(src: &[f32], c: usize, hw: usize, dst: &mut [f32]) {
    const B: usize = 8;
    let (src, dst) = (&src[..c * hw], &mut dst[..c * hw]);
    let (c_full, hw_full) = (c - c % B, hw - hw % B);
    for p0 in (0..hw_full).step_by(B) {
        for ch0 in (0..c_full).step_by(B) {
            let mut block = [[0.0f32; B]; B];
            for (i, row) in block.iter_mut().enumerate() {
                row.copy_from_slice(&src[(ch0 + i) * hw + p0..][..B]);
            }
            for j in 0..B {
                let d = &mut dst[(p0 + j) * c + ch0..][..B];
                for (i, v) in d.iter_mut().enumerate() {
                    *v += block[i][j];
                }
            }
        }
    }
    add_transposed_edges(src, c, hw, dst, (c_full, hw_full));
}

/// The part of [`RowOps::add_transposed`] outside the whole blocks: channels
/// from `c_full` on for the pixels below `hw_full`, every channel above.
pub(crate) fn add_transposed_edges(
    src: &[f32],
    c: usize,
    hw: usize,
    dst: &mut [f32],
    (c_full, hw_full): (usize, usize),
) {
    for p in 0..hw {
        let chs = if p < hw_full { c_full..c } else { 0..c };
        for ch in chs {
            dst[p * c + ch] += src[ch * hw + p];
        }
    }
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

/// Splits `len` into the part made of full `lanes` and the rest.
fn split(len: usize, lanes: usize) -> usize {
    len - len % lanes
}

/// Applies `f` to `x`, the tail through a buffer padded with `pad`.
fn map_padded<K: RowOps>(x: &mut [f32], pad: f32, f: impl Fn(&mut [f32])) {
    let body = split(x.len(), K::LANES);
    f(&mut x[..body]);
    let tail = &mut x[body..];
    if !tail.is_empty() {
        let mut buf = [pad; MAX_LANES];
        buf[..tail.len()].copy_from_slice(tail);
        f(&mut buf[..K::LANES]);
        tail.copy_from_slice(&buf[..tail.len()]);
    }
}

/// Reduces `x` with `f` (body, then the tail padded with `pad`) and `+`/`max`.
fn reduce_padded<K: RowOps>(
    x: &[f32],
    pad: f32,
    f: impl Fn(&[f32]) -> f32,
    join: fn(f32, f32) -> f32,
) -> f32 {
    let body = split(x.len(), K::LANES);
    let mut acc = f(&x[..body]);
    let tail = &x[body..];
    if !tail.is_empty() {
        let mut buf = [pad; MAX_LANES];
        buf[..tail.len()].copy_from_slice(tail);
        acc = join(acc, f(&buf[..K::LANES]));
    }
    acc
}

/// Softmax over each `row_len` row of `x`, in place, max-subtracted.
pub(crate) fn softmax_rows<K: RowOps>(kern: K, x: &mut [f32], row_len: usize) {
    if x.is_empty() {
        return;
    }
    assert!(
        row_len > 0 && x.len().is_multiple_of(row_len),
        "softmax: x is not rows × row_len"
    );
    if row_len < K::LANES {
        return softmax_short_rows(kern, x, row_len);
    }
    for row in x.chunks_exact_mut(row_len) {
        let max = reduce_padded::<K>(row, f32::NEG_INFINITY, |v| kern.max(v), f32::max);
        let body = split(row.len(), K::LANES);
        let mut sum = kern.exp_sub_sum(&mut row[..body], max);
        let tail = &mut row[body..];
        if !tail.is_empty() {
            let mut buf = [f32::NEG_INFINITY; MAX_LANES];
            buf[..tail.len()].copy_from_slice(tail);
            sum += kern.exp_sub_sum(&mut buf[..K::LANES], max);
            tail.copy_from_slice(&buf[..tail.len()]);
        }
        let inv = 1.0 / sum;
        map_padded::<K>(row, 0.0, |v| kern.scale(v, inv));
    }
}

/// Softmax of rows shorter than a vector (the image → token attention:
/// rows of a handful of tokens): per row the max is subtracted and the sum
/// taken in scalar code, and the exponentials run over the whole buffer in
/// one vector pass, instead of one padded vector call per row.
fn softmax_short_rows<K: RowOps>(kern: K, x: &mut [f32], row_len: usize) {
    for row in x.chunks_exact_mut(row_len) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.iter_mut().for_each(|v| *v -= max);
    }
    map_padded::<K>(x, f32::NEG_INFINITY, |v| {
        kern.exp_sub_sum(v, 0.0);
    });
    for row in x.chunks_exact_mut(row_len) {
        let inv = 1.0 / row.iter().sum::<f32>();
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Softmax over interleaved groups: each row of `x` holds `groups × lanes`
/// values, entry `(g, l)` at `g·lanes + l`, and each of its `lanes`
/// softmaxes runs over `g` (the image → token attention with the scores'
/// columns ordered (token, head): one softmax per head over a handful of
/// tokens). Maxima, sums and scaling run across the lanes, the
/// exponentials over the whole buffer in one vector pass.
pub(crate) fn softmax_interleaved<K: RowOps>(kern: K, x: &mut [f32], groups: usize, lanes: usize) {
    let row = groups * lanes;
    assert!(
        row > 0 && x.len().is_multiple_of(row),
        "softmax_interleaved: x is not rows × groups × lanes"
    );
    match lanes {
        8 => interleaved_rows::<K, 8>(kern, x, groups),
        16 => interleaved_rows::<K, 16>(kern, x, groups),
        _ => {
            // any other width: one lane at a time
            for r in x.chunks_exact_mut(row) {
                for l in 0..lanes {
                    let max = (0..groups).fold(f32::NEG_INFINITY, |m, g| m.max(r[g * lanes + l]));
                    (0..groups).for_each(|g| r[g * lanes + l] -= max);
                }
            }
            exp_all(kern, x);
            for r in x.chunks_exact_mut(row) {
                for l in 0..lanes {
                    let inv = 1.0 / (0..groups).map(|g| r[g * lanes + l]).sum::<f32>();
                    (0..groups).for_each(|g| r[g * lanes + l] *= inv);
                }
            }
        }
    }
}

/// [`softmax_interleaved`] for `L` lanes (fixed-size arrays the compiler
/// keeps in vector registers).
fn interleaved_rows<K: RowOps, const L: usize>(kern: K, x: &mut [f32], groups: usize) {
    let row = groups * L;
    for r in x.chunks_exact_mut(row) {
        let mut max = [f32::NEG_INFINITY; L];
        for g in r.chunks_exact(L) {
            max.iter_mut().zip(g).for_each(|(m, &v)| *m = m.max(v));
        }
        for g in r.chunks_exact_mut(L) {
            g.iter_mut().zip(&max).for_each(|(v, &m)| *v -= m);
        }
    }
    exp_all(kern, x);
    for r in x.chunks_exact_mut(row) {
        let mut sum = [0.0f32; L];
        for g in r.chunks_exact(L) {
            sum.iter_mut().zip(g).for_each(|(s, &v)| *s += v);
        }
        let inv = sum.map(|s| 1.0 / s);
        for g in r.chunks_exact_mut(L) {
            g.iter_mut().zip(&inv).for_each(|(v, &i)| *v *= i);
        }
    }
}

/// `x ← exp(x)` over the whole buffer.
fn exp_all<K: RowOps>(kern: K, x: &mut [f32]) {
    map_padded::<K>(x, f32::NEG_INFINITY, |v| {
        kern.exp_sub_sum(v, 0.0);
    });
}

/// The numerators of a softmax down the columns of row-major `x` (`rows ×
/// cols`): `x[i][j] ← exp(x[i][j] − max_i x[i][j])`, and `sums[j]` their
/// column sums (dividing column `j` by `sums[j]` completes the softmax; a
/// product with `x` may divide its result instead). The maxima and sums run
/// along the rows, vectorized across the columns.
pub(crate) fn exp_columns<K: RowOps>(kern: K, x: &mut [f32], cols: usize, sums: &mut [f32]) {
    assert!(
        cols > 0 && x.len().is_multiple_of(cols),
        "exp_columns: x is not rows × cols"
    );
    let sums = &mut sums[..cols];
    sums.fill(f32::NEG_INFINITY);
    for row in x.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
    }
    for row in x.chunks_exact_mut(cols) {
        row.iter_mut().zip(&*sums).for_each(|(v, &m)| *v -= m);
    }
    map_padded::<K>(x, f32::NEG_INFINITY, |v| {
        kern.exp_sub_sum(v, 0.0);
    });
    sums.fill(0.0);
    for row in x.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

/// LayerNorm over each `gamma.len()` row of `x` into `out`.
pub(crate) fn layer_norm<K: RowOps>(
    kern: K,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    let dim = gamma.len();
    assert_eq!(
        beta.len(),
        dim,
        "layer_norm: gamma and beta differ in length"
    );
    assert_eq!(out.len(), x.len(), "layer_norm: out and x differ in length");
    if x.is_empty() {
        return;
    }
    assert!(
        dim > 0 && x.len().is_multiple_of(dim),
        "layer_norm: x is not rows × dim"
    );
    if dim < K::LANES {
        // rows shorter than a vector (LayerNorm2d of the mask downscaling:
        // 4 channels): plain code, instead of padded vector calls per row
        for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let mean = row.iter().sum::<f32>() / dim as f32;
            let ss: f32 = row.iter().map(|&v| (v - mean) * (v - mean)).sum();
            let inv = 1.0 / (ss / dim as f32 + eps).sqrt();
            for (((d, &v), &g), &b) in dst.iter_mut().zip(row).zip(gamma).zip(beta) {
                *d = (v - mean) * inv * g + b;
            }
        }
        return;
    }
    for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum = reduce_padded::<K>(row, 0.0, |v| kern.sum(v), |a, b| a + b);
        let mean = sum / dim as f32;
        let ss = reduce_padded::<K>(row, mean, |v| kern.sq_dev_sum(v, mean), |a, b| a + b);
        let inv = 1.0 / (ss / dim as f32 + eps).sqrt();
        let body = split(dim, K::LANES);
        kern.norm_affine(
            &row[..body],
            mean,
            inv,
            (&gamma[..body], &beta[..body]),
            &mut dst[..body],
        );
        let t = dim - body;
        if t > 0 {
            let mut bufs = [[0.0f32; MAX_LANES]; 4];
            bufs[0][..t].copy_from_slice(&row[body..]);
            bufs[1][..t].copy_from_slice(&gamma[body..]);
            bufs[2][..t].copy_from_slice(&beta[body..]);
            let [xs, g, b, o] = &mut bufs;
            let l = K::LANES;
            kern.norm_affine(&xs[..l], mean, inv, (&g[..l], &b[..l]), &mut o[..l]);
            dst[body..].copy_from_slice(&o[..t]);
        }
    }
}

/// `x ← erf(x)`.
pub(crate) fn erf<K: RowOps>(kern: K, x: &mut [f32]) {
    map_padded::<K>(x, 0.0, |v| kern.erf(v));
}

/// `x ← gelu(x)`.
pub(crate) fn gelu<K: RowOps>(kern: K, x: &mut [f32]) {
    map_padded::<K>(x, 0.0, |v| kern.gelu(v));
}

/// `out = top · (1 − fy) + bot · fy` over whole rows.
pub(crate) fn lerp<K: RowOps>(kern: K, top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]) {
    let body = split(out.len(), K::LANES);
    kern.lerp(&top[..body], &bot[..body], fy, &mut out[..body]);
    let t = out.len() - body;
    if t > 0 {
        let mut bufs = [[0.0f32; MAX_LANES]; 3];
        bufs[0][..t].copy_from_slice(&top[body..]);
        bufs[1][..t].copy_from_slice(&bot[body..]);
        let [tb, bb, ob] = &mut bufs;
        let l = K::LANES;
        kern.lerp(&tb[..l], &bb[..l], fy, &mut ob[..l]);
        out[body..].copy_from_slice(&ob[..t]);
    }
}
