//! The student's encoder on our kernels (`sammix::convnet`) against tract on
//! the same input, one thread each, same process, alternating:
//!
//!     cargo run --release --example native_encoder [BUNDLE] [ITERATIONS]
//!
//! Prints the median and p90 ms of each and their ratio, the kernel level,
//! and the largest difference between the two outputs; with `STEPS=1`, first
//! the median ms of each native step over 20 runs.

use std::path::PathBuf;
use std::time::Instant;

use sammix::convnet::ConvNet;
use sammix::graph::{self, GraphSpec, InputSpec, Tensor};
use sammix::kernels::Kernels;
use sammix::npy;

fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bundle = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "models/sammix-us-tiny".into()),
    );
    let iters: usize = args.next().map_or(Ok(100), |s| s.parse())?;
    let path = bundle.join("encoder.onnx");
    let mut net = ConvNet::load(&path)?;
    let (shape, input) = npy::read_typed::<f32>(bundle.join("reference/frame_000/input.npy"))?;
    let (c, h, w) = net.output_chw();
    let mut out = vec![0.0f32; c * h * w];
    let plan = graph::load(
        &path,
        &GraphSpec::new(vec![InputSpec::shape("image", shape.clone())]),
    )?;
    let (mut tn, mut tt) = (Vec::new(), Vec::new());
    let mut diff = 0.0f32;
    for i in 0..iters + 5 {
        let t0 = Instant::now();
        net.run(&input, &mut out)?;
        let native = t0.elapsed().as_secs_f64() * 1e3;
        let tensor = Tensor::from_shape(&shape, &input)?;
        let t0 = Instant::now();
        let r = plan.run(vec![tensor])?;
        let tract = t0.elapsed().as_secs_f64() * 1e3;
        if i >= 5 {
            tn.push(native);
            tt.push(tract);
        }
        let plain = r[0].try_as_plain_ram()?;
        let tr = plain.as_slice::<f32>()?;
        diff = out
            .iter()
            .zip(tr)
            .map(|(a, b)| (a - b).abs())
            .fold(diff, f32::max);
    }
    if std::env::var("STEPS").is_ok() {
        let mut acc: Vec<(String, Vec<f64>)> = Vec::new();
        for _ in 0..20 {
            for (i, (what, ms)) in net.run_timed(&input, &mut out)?.into_iter().enumerate() {
                if acc.len() <= i {
                    acc.push((what, Vec::new()));
                }
                acc[i].1.push(ms);
            }
        }
        for (what, v) in acc {
            println!("{:>8.3} ms  {what}", median_p90(v).0);
        }
    }
    let (n50, n90) = median_p90(tn);
    let (t50, t90) = median_p90(tt);
    println!(
        "{}: native {n50:.2} ms (p90 {n90:.2}), tract {t50:.2} ms (p90 {t90:.2}), tract / native {:.2}x; kernels {}; max |native - tract| {diff:.2e}; {iters} runs each",
        path.display(),
        t50 / n50,
        Kernels::get().name()
    );
    Ok(())
}
