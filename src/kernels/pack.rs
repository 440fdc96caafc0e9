//! Weights packed once into the panels the GEMM micro-kernels stream.
//!
//! Every GEMM splits the `n` output columns into panels of [`NR`] columns
//! (the last one zero-padded). An f32 panel holds its `k × 16` block row by
//! row, the same for every level. An int8 panel holds `kp × 16` bytes, `kp`
//! being `k` rounded up to 16 (zero rows), in a k-group interleave that
//! depends on the instruction the level multiplies with: see [`I8Layout`].

/// Columns per panel, for every level and both element types.
pub const NR: usize = 16;

/// The `k` step of the int8 kernels: packed `k` is a multiple of it.
pub const KB: usize = 16;

/// `B[k×n]` (f32, row-major) packed into column panels for
/// [`Kernels::gemm_f32`](super::Kernels::gemm_f32). Level-independent: one packing serves every level.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedB {
    k: usize,
    n: usize,
    /// Panel `j` at `j·k·NR`: row `p` of the panel at `p·NR`.
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `b`, row-major `k × n` (`b.len() == k·n`).
    ///
    /// # Panics
    /// If `b.len() != k·n`.
    pub fn new(b: &[f32], k: usize, n: usize) -> PackedB {
        assert_eq!(b.len(), k * n, "PackedB::new: b is not k×n");
        Self::build(k, n, |p, j| b[p * n + j])
    }

    /// Packs a linear layer's weight as PyTorch stores it, `w[n×k]`
    /// (out × in, row-major), so that `y = x · wᵀ` is `gemm_f32(x, packed)`.
    ///
    /// # Panics
    /// If `w.len() != n·k`.
    pub fn from_linear_weight(w: &[f32], n: usize, k: usize) -> PackedB {
        assert_eq!(w.len(), n * k, "PackedB::from_linear_weight: w is not n×k");
        Self::build(k, n, |p, j| w[j * k + p])
    }

    /// A zero `k × n` matrix, its buffer sized for
    /// [`PackedB::repack_with`] of up to `k × n` without allocating.
    pub fn zeros(k: usize, n: usize) -> PackedB {
        PackedB {
            k,
            n,
            data: vec![0.0; n.div_ceil(NR) * k * NR],
        }
    }

    /// Packs `B[k×n]`, element `(p, j)` being `at(p, j)`, into this buffer:
    /// for an operand that changes every call (attention keys and values).
    /// Allocates only when `k × n` needs more panels than the buffer ever
    /// held (see [`PackedB::zeros`]).
    pub fn repack_with(&mut self, k: usize, n: usize, at: impl Fn(usize, usize) -> f32) {
        self.reshape(k, n);
        for (jp, panel) in self.data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            let valid = NR.min(n - jp * NR);
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, d) in row.iter_mut().enumerate() {
                    *d = if c < valid { at(p, jp * NR + c) } else { 0.0 };
                }
            }
        }
    }

    /// Packs `B[k×n]` given row-major, row `p` at `b[p·ld..][..n]`, into
    /// this buffer: [`PackedB::repack_with`] for a plain matrix, as straight
    /// copies of 16 floats.
    ///
    /// # Panics
    /// If `ld < n` or `b` is shorter than `(k − 1)·ld + n`.
    pub fn repack_rows(&mut self, b: &[f32], ld: usize, k: usize, n: usize) {
        assert!(ld >= n, "PackedB::repack_rows: ld < n");
        if k > 0 && n > 0 {
            assert!(
                b.len() >= (k - 1) * ld + n,
                "PackedB::repack_rows: b too short"
            );
        }
        self.reshape(k, n);
        for (jp, panel) in self.data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            let j0 = jp * NR;
            let valid = NR.min(n - j0);
            for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let src = &b[p * ld + j0..];
                if valid == NR {
                    dst.copy_from_slice(&src[..NR]);
                } else {
                    dst[..valid].copy_from_slice(&src[..valid]);
                    dst[valid..].fill(0.0);
                }
            }
        }
    }

    /// Packs `B = Aᵀ` (`k × n`), `A` being `n × k` row-major with row `j` at
    /// `a[j·ld..][..k]` (attention keys: `q·kᵀ`), into this buffer. Reads
    /// each row of `A` once, in order; the panel being written (`k × 16`)
    /// stays in L1.
    ///
    /// # Panics
    /// If `ld < k` or `a` is shorter than `(n − 1)·ld + k`.
    pub fn repack_transposed(&mut self, a: &[f32], ld: usize, k: usize, n: usize) {
        assert!(ld >= k, "PackedB::repack_transposed: ld < k");
        if k > 0 && n > 0 {
            assert!(
                a.len() >= (n - 1) * ld + k,
                "PackedB::repack_transposed: a too short"
            );
        }
        self.reshape(k, n);
        for (jp, panel) in self.data.chunks_exact_mut((k * NR).max(1)).enumerate() {
            let j0 = jp * NR;
            let valid = NR.min(n - j0);
            for jj in 0..NR {
                if jj < valid {
                    let src = &a[(j0 + jj) * ld..][..k];
                    for (dst, &x) in panel.chunks_exact_mut(NR).zip(src) {
                        dst[jj] = x;
                    }
                } else {
                    panel.chunks_exact_mut(NR).for_each(|dst| dst[jj] = 0.0);
                }
            }
        }
    }

    /// Sets the shape to `k × n`, growing the buffer only past its largest
    /// shape so far.
    fn reshape(&mut self, k: usize, n: usize) {
        self.data.resize(n.div_ceil(NR) * k * NR, 0.0);
        self.k = k;
        self.n = n;
    }

    fn build(k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> PackedB {
        let mut b = PackedB::zeros(k, n);
        b.repack_with(k, n, at);
        b
    }

    /// The inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of output columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Element `(p, j)` of `B` (`p < k`, `j < n`).
    ///
    /// # Panics
    /// If `(p, j)` is outside `k × n`.
    pub fn get(&self, p: usize, j: usize) -> f32 {
        assert!(p < self.k && j < self.n, "PackedB::get: ({p}, {j}) outside");
        self.data[(j / NR) * self.k * NR + p * NR + j % NR]
    }

    /// Panel `j`: `k × NR` floats.
    pub(crate) fn panel(&self, j: usize) -> &[f32] {
        &self.data[j * self.k * NR..(j + 1) * self.k * NR]
    }
}

/// How an int8 panel orders its `kp × 16` bytes: groups of `group`
/// consecutive `k` values of one column are contiguous, the 16 columns' groups
/// follow each other, then the next group of `k`. The byte of `(p, c)` lies at
/// `(p / g)·16·g + c·g + p % g`:
///
/// | group | level | instruction it feeds |
/// |---|---|---|
/// | 1 | scalar | plain rows (`p·16 + c`) |
/// | 2 | AVX2 | `vpmaddwd`: a k-pair of a column per 32-bit lane |
/// | 4 | NEON dot | `sdot`: 4 k of a column per 32-bit lane |
/// | 8 | NEON i8mm | `smmla`: 2 columns × 8 k per register |
/// | 16 | NEON | `smull`/`sadalp`: 16 k of a column per register |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I8Layout {
    /// Consecutive `k` values of one column stored together.
    pub group: usize,
}

impl I8Layout {
    /// Byte offset of `(p, c)` inside a panel.
    #[inline]
    fn offset(self, p: usize, c: usize) -> usize {
        let g = self.group;
        (p / g) * NR * g + c * g + p % g
    }
}

/// `B[k×n]` int8 weights with per-column scales, packed for one level's
/// [`Kernels::gemm_i8`](super::Kernels::gemm_i8) (see [`Kernels::pack_i8`](super::Kernels::pack_i8)). Also keeps each column's
/// sum, for the activation zero point.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedI8 {
    layout: I8Layout,
    k: usize,
    kp: usize,
    n: usize,
    data: Vec<i8>,
    col_sums: Vec<i32>,
    scales: Vec<f32>,
}

impl PackedI8 {
    /// Packs `b`, row-major `k × n`, with `scales[j]` the dequantization
    /// scale of column `j` (weights are symmetric: zero point 0).
    ///
    /// # Panics
    /// If `b.len() != k·n` or `scales.len() != n`.
    pub fn new(layout: I8Layout, b: &[i8], k: usize, n: usize, scales: &[f32]) -> PackedI8 {
        assert_eq!(b.len(), k * n, "PackedI8::new: b is not k×n");
        assert_eq!(scales.len(), n, "PackedI8::new: one scale per column");
        assert!(matches!(layout.group, 1 | 2 | 4 | 8 | 16));
        let kp = k.div_ceil(KB) * KB;
        let panels = n.div_ceil(NR);
        let mut data = vec![0i8; panels * kp * NR];
        for (jp, panel) in data.chunks_exact_mut((kp * NR).max(1)).enumerate() {
            for p in 0..k {
                for c in 0..NR.min(n - jp * NR) {
                    panel[layout.offset(p, c)] = b[p * n + jp * NR + c];
                }
            }
        }
        let col_sums = (0..n)
            .map(|j| (0..k).map(|p| i32::from(b[p * n + j])).sum())
            .collect();
        PackedI8 {
            layout,
            k,
            kp,
            n,
            data,
            col_sums,
            scales: scales.to_vec(),
        }
    }

    /// The layout (the level it was packed for).
    pub fn layout(&self) -> I8Layout {
        self.layout
    }

    /// The inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of output columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `Σ_p B[p][j]` for every column.
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }

    /// The per-column scales.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// `k` rounded up to [`KB`].
    pub(crate) fn kp(&self) -> usize {
        self.kp
    }

    /// Panel `j`: `kp × NR` bytes.
    pub(crate) fn panel(&self, j: usize) -> &[i8] {
        &self.data[j * self.kp * NR..(j + 1) * self.kp * NR]
    }
}

/// Quantization of the activations `A` of an int8 GEMM: the real value of
/// `a` is `(a − zero_point) · scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActQuant {
    /// Per-tensor scale.
    pub scale: f32,
    /// Per-tensor zero point.
    pub zero_point: i8,
}

/// A `ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)` (SAM's output
/// upscaling) with its weight packed for [`Kernels::conv_transpose_2x2`](super::Kernels::conv_transpose_2x2).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose2x2 {
    c_in: usize,
    c_out: usize,
    /// The weight as a `c_in × (c_out·4)` matrix, columns `(co, dy, dx)`.
    pub(crate) weight: PackedB,
    /// The bias of each GEMM column (`bias[co]` repeated four times).
    pub(crate) bias: Vec<f32>,
}

impl ConvTranspose2x2 {
    /// From PyTorch's weight `[c_in][c_out][2][2]` and optional bias `[c_out]`.
    ///
    /// # Panics
    /// If the lengths do not match `c_in` and `c_out`.
    pub fn new(weight: &[f32], bias: Option<&[f32]>, c_in: usize, c_out: usize) -> Self {
        assert_eq!(weight.len(), c_in * c_out * 4, "ConvTranspose2x2: weight");
        let bias = match bias {
            Some(b) => {
                assert_eq!(b.len(), c_out, "ConvTranspose2x2: bias");
                b.iter().flat_map(|&v| [v; 4]).collect()
            }
            None => vec![0.0; c_out * 4],
        };
        ConvTranspose2x2 {
            c_in,
            c_out,
            weight: PackedB::new(weight, c_in, c_out * 4),
            bias,
        }
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.c_in
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// The scratch length (f32s) [`Kernels::conv_transpose_2x2`](super::Kernels::conv_transpose_2x2) needs for an
    /// `h × w` input.
    pub fn scratch_len(&self, h: usize, w: usize) -> usize {
        h * w * (self.c_in + 4 * self.c_out)
    }
}
