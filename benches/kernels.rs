//! Kernel benchmarks at the SAM mask decoder's shapes, on every level this
//! CPU runs: `cargo bench --bench kernels` (add `-- --quick` for a short
//! run). Each benchmark id names the kernel that ran (`avx2_fma_gemm_f32_6x16`,
//! `neon_dot_gemm_i8_sdot_4x16`, …), so a number never hides its code.
//! Throughput is in multiply-accumulates (GEMM) or elements (row ops).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use sammix::kernels::{ActQuant, ConvTranspose2x2, Kernels, Level, PackedB};

/// `(m, k, n)`: 7 = 5 output tokens + 2 box corners; 4096 = 64 × 64 image
/// positions; 256 the embedding dim, 128 the cross-attention dim, 2048 the
/// token MLP, 32 the upscaled channels.
const GEMM_SHAPES: &[(usize, usize, usize)] = &[
    (7, 256, 256),
    (7, 256, 2048),
    (7, 2048, 256),
    (256, 256, 256),
    (4096, 256, 128),
    (4096, 128, 256),
    (4096, 256, 256),
    (4096, 256, 32),
];

/// The kernels of every level this CPU runs, one per distinct `name` (a
/// level that reuses a lower level's kernel for an operation is not timed
/// twice).
fn levels(name: fn(&Kernels) -> &'static str) -> Vec<Kernels> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for k in Level::ALL.iter().filter_map(|&l| Kernels::for_level(l)) {
        if !seen.contains(&name(&k)) {
            seen.push(name(&k));
            out.push(k);
        }
    }
    out
}

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn data_i8(len: usize) -> Vec<i8> {
    (0..len).map(|i| ((i * 7919) % 255) as i8).collect()
}

fn gemm_f32(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_f32");
    for &(m, k, n) in GEMM_SHAPES {
        let (a, b) = (data(m * k), PackedB::new(&data(k * n), k, n));
        let mut out = vec![0.0; m * n];
        g.throughput(Throughput::Elements((m * k * n) as u64));
        for kern in levels(|k| k.op_names().gemm_f32) {
            let id = BenchmarkId::new(kern.op_names().gemm_f32, format!("{m}x{k}x{n}"));
            g.bench_function(id, |bench| {
                bench.iter(|| kern.gemm_f32(m, black_box(&a), &b, None, &mut out))
            });
        }
    }
    g.finish();
}

fn gemm_i8(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_i8");
    let act = ActQuant {
        scale: 0.02,
        zero_point: 3,
    };
    for &(m, k, n) in GEMM_SHAPES {
        let (a, b) = (data_i8(m * k), data_i8(k * n));
        let scales = vec![0.01; n];
        let mut out = vec![0.0; m * n];
        g.throughput(Throughput::Elements((m * k * n) as u64));
        for kern in levels(|k| k.op_names().gemm_i8) {
            let packed = kern.pack_i8(&b, k, n, &scales);
            let id = BenchmarkId::new(kern.op_names().gemm_i8, format!("{m}x{k}x{n}"));
            g.bench_function(id, |bench| {
                bench.iter(|| kern.gemm_i8(m, black_box(&a), &packed, act, None, &mut out))
            });
        }
    }
    g.finish();
}

fn rows(c: &mut Criterion) {
    let mut g = c.benchmark_group("rows");
    for kern in levels(|k| k.op_names().rows) {
        let name = kern.op_names().rows;
        let x = data(8 * 4096);
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(
            BenchmarkId::new(format!("{name}_softmax"), "8x4096"),
            |bench| {
                let mut y = x.clone();
                bench.iter(|| {
                    y.copy_from_slice(&x);
                    kern.softmax_rows(black_box(&mut y), 4096)
                })
            },
        );
        let (x, gamma, beta) = (data(4096 * 256), data(256), data(256));
        let mut out = vec![0.0; x.len()];
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(
            BenchmarkId::new(format!("{name}_layer_norm"), "4096x256"),
            |bench| bench.iter(|| kern.layer_norm(black_box(&x), &gamma, &beta, 1e-6, &mut out)),
        );
        let x = data(7 * 2048);
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(
            BenchmarkId::new(format!("{name}_gelu"), "7x2048"),
            |bench| {
                let mut y = x.clone();
                bench.iter(|| {
                    y.copy_from_slice(&x);
                    kern.gelu(black_box(&mut y))
                })
            },
        );
        let src = data(256 * 256);
        let (ys, xs) = (
            sammix::resize::axis(256, 1024),
            sammix::resize::axis(256, 1024),
        );
        let (mut dst, mut scratch) = (vec![0.0; 1024 * 1024], vec![0.0; 2 * 1024]);
        g.throughput(Throughput::Elements(dst.len() as u64));
        g.bench_function(
            BenchmarkId::new(format!("{name}_resize"), "256to1024"),
            |bench| {
                bench.iter(|| {
                    kern.resize_bilinear(black_box(&src), 256, (&ys, &xs), &mut dst, &mut scratch)
                })
            },
        );
    }
    g.finish();
}

fn conv_transpose(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv_transpose_2x2");
    // SAM's first upscaling step at E = 16: 256 → 64 channels, 16² → 32².
    let (c_in, c_out, h, w) = (256, 64, 16, 16);
    let conv = ConvTranspose2x2::new(&data(c_in * c_out * 4), Some(&data(c_out)), c_in, c_out);
    let input = data(c_in * h * w);
    let mut out = vec![0.0; c_out * 4 * h * w];
    let mut scratch = vec![0.0; conv.scratch_len(h, w)];
    g.throughput(Throughput::Elements((h * w * c_in * c_out * 4) as u64));
    for kern in levels(|k| k.op_names().gemm_f32) {
        let id = BenchmarkId::new(kern.op_names().gemm_f32, "256to64_16x16");
        g.bench_function(id, |bench| {
            bench.iter(|| {
                kern.conv_transpose_2x2(&conv, black_box(&input), (h, w), &mut out, &mut scratch)
            })
        });
    }
    g.finish();
}

fn main() {
    // `criterion_group!` would declare an undocumented `pub fn`, which the
    // crate's `missing_docs = "deny"` rejects: the same, by hand.
    let mut c = Criterion::default().configure_from_args();
    gemm_f32(&mut c);
    gemm_i8(&mut c);
    rows(&mut c);
    conv_transpose(&mut c);
    c.final_summary();
}
