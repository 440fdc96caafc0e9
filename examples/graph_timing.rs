//! Times one ONNX graph in tract, single-threaded.
//!
//! ```text
//! cargo run --release --example graph_timing -- GRAPH.onnx \
//!     [--input NAME=FILE.npy]... [--const NAME=FILE.npy]... \
//!     [--shape NAME=1,256,16,16]... [--symbol NAME=VALUE]... \
//!     [--strip-value-info] [--iters N] [--warmup N]
//! ```
//!
//! Inputs without a file get deterministic pseudo-random values of the
//! graph's declared shape (or the `--shape` override). `--const` pins an
//! input as a constant before optimization (the SAM decoder's
//! `orig_im_size`). Prints one line of JSON: load time, min / median / max
//! milliseconds per run, and the CPU features the binary was compiled for
//! (build with `RUSTFLAGS="-C target-cpu=native"` to let tract use them all).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sammix::graph::{self, DatumType, GraphSpec, InputSpec, Tensor};
use sammix::npy::NpyArray;

const USAGE: &str =
    "usage: graph_timing GRAPH.onnx [--input NAME=FILE.npy]... [--const NAME=FILE.npy]... \
[--shape NAME=D0,D1,...]... [--symbol NAME=VALUE]... [--strip-value-info] [--iters N] [--warmup N]";

struct Args {
    graph: PathBuf,
    inputs: Vec<(String, PathBuf)>,
    consts: Vec<(String, PathBuf)>,
    shapes: Vec<(String, Vec<usize>)>,
    symbols: Vec<(String, usize)>,
    strip_value_info: bool,
    iters: usize,
    warmup: usize,
}

fn split_pair(flag: &str, value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, rest)) if !name.is_empty() && !rest.is_empty() => {
            Ok((name.to_string(), rest.to_string()))
        }
        _ => Err(format!("{flag} expects NAME=VALUE, got {value:?}")),
    }
}

fn parse_count(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a non-negative integer, got {value:?}"))
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut graph = None;
    let mut args = Args {
        graph: PathBuf::new(),
        inputs: vec![],
        consts: vec![],
        shapes: vec![],
        symbols: vec![],
        strip_value_info: false,
        iters: 20,
        warmup: 3,
    };
    while let Some(arg) = argv.next() {
        let mut value = |flag: &str| argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--input" => {
                let (name, file) = split_pair("--input", &value("--input")?)?;
                args.inputs.push((name, file.into()));
            }
            "--const" => {
                let (name, file) = split_pair("--const", &value("--const")?)?;
                args.consts.push((name, file.into()));
            }
            "--shape" => {
                let (name, dims) = split_pair("--shape", &value("--shape")?)?;
                let shape = dims
                    .split(',')
                    .map(|d| d.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        format!("--shape {name}: expected comma-separated sizes, got {dims:?}")
                    })?;
                args.shapes.push((name, shape));
            }
            "--symbol" => {
                let (name, v) = split_pair("--symbol", &value("--symbol")?)?;
                args.symbols.push((name, parse_count("--symbol", &v)?));
            }
            "--strip-value-info" => args.strip_value_info = true,
            "--iters" => args.iters = parse_count("--iters", &value("--iters")?)?,
            "--warmup" => args.warmup = parse_count("--warmup", &value("--warmup")?)?,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path => {
                if graph.replace(PathBuf::from(path)).is_some() {
                    return Err(format!("only one graph, got a second: {path}"));
                }
            }
        }
    }
    args.graph = graph.ok_or("missing GRAPH.onnx")?;
    if args.iters == 0 {
        return Err("--iters must be at least 1".to_string());
    }
    Ok(args)
}

/// A small deterministic generator (xorshift64*), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn random_tensor(rng: &mut Rng, dt: DatumType, shape: &[usize]) -> Result<Tensor, String> {
    let n: usize = shape.iter().product();
    let t = match dt {
        DatumType::F32 => {
            Tensor::from_shape(shape, &(0..n).map(|_| rng.unit()).collect::<Vec<f32>>())
        }
        DatumType::I64 => Tensor::from_shape(
            shape,
            &(0..n).map(|_| (rng.next() % 4) as i64).collect::<Vec<_>>(),
        ),
        DatumType::I32 => Tensor::from_shape(
            shape,
            &(0..n).map(|_| (rng.next() % 4) as i32).collect::<Vec<_>>(),
        ),
        DatumType::U8 => {
            Tensor::from_shape(shape, &(0..n).map(|_| rng.next() as u8).collect::<Vec<_>>())
        }
        other => {
            return Err(format!(
                "cannot make random {other:?} inputs; give a file with --input"
            ))
        }
    };
    t.map_err(|e| format!("{e:#}"))
}

/// CPU features this binary was compiled to use (not what the CPU has).
fn compiled_features() -> Vec<&'static str> {
    let mut f = Vec::new();
    macro_rules! probe {
        ($($feat:tt),*) => { $( if cfg!(target_feature = $feat) { f.push($feat); } )* };
    }
    probe!(
        "sse4.1",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512vnni",
        "avxvnni",
        "neon",
        "dotprod",
        "i8mm"
    );
    f
}

fn run(args: Args) -> Result<String, String> {
    let mut spec = GraphSpec {
        symbols: args.symbols.clone(),
        strip_value_info: args.strip_value_info,
        ..Default::default()
    };
    let mut feeds = Vec::new();
    let mut sources = Vec::new();
    for (name, file) in &args.inputs {
        let tensor = graph::read_npy_tensor(file).map_err(|e| e.to_string())?;
        spec.inputs.push(InputSpec::shape(name, tensor.shape()));
        feeds.push((name.clone(), tensor));
        sources.push((name.clone(), file.display().to_string()));
    }
    for (name, file) in &args.consts {
        let array = NpyArray::read(file).map_err(|e| e.to_string())?;
        spec.inputs
            .push(InputSpec::constant_npy(name, array).map_err(|e| e.to_string())?);
    }
    for (name, shape) in &args.shapes {
        if feeds.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "--shape {name}: the input already comes from a file"
            ));
        }
        spec.inputs.push(InputSpec::shape(name, shape.clone()));
    }

    let t0 = Instant::now();
    let plan = graph::load(&args.graph, &spec).map_err(|e| e.to_string())?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut inputs = Vec::new();
    for info in plan.inputs() {
        match feeds.iter().position(|(n, _)| *n == info.name) {
            Some(ix) => inputs.push(feeds.swap_remove(ix).1),
            None => {
                inputs.push(random_tensor(&mut rng, info.datum_type, &info.shape)?);
                sources.push((info.name.clone(), "random".to_string()));
            }
        }
    }
    let described: Vec<serde_json::Value> = plan
        .inputs()
        .iter()
        .map(|i| {
            let source = sources.iter().find(|(n, _)| *n == i.name).map(|(_, s)| s.as_str());
            serde_json::json!({"name": i.name, "dtype": format!("{:?}", i.datum_type), "shape": i.shape, "source": source})
        })
        .collect();

    let mut session = plan.session().map_err(|e| e.to_string())?;
    for _ in 0..args.warmup {
        session.run(inputs.clone()).map_err(|e| e.to_string())?;
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let batch = inputs.clone();
        let t = Instant::now();
        session.run(batch).map_err(|e| e.to_string())?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let median = if ms.len() % 2 == 1 {
        ms[ms.len() / 2]
    } else {
        (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
    };
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let line = serde_json::json!({
        "graph": args.graph.display().to_string(),
        "engine": "tract",
        "threads": 1,
        "iters": args.iters,
        "warmup": args.warmup,
        "load_ms": round(load_ms),
        "min_ms": round(ms[0]),
        "median_ms": round(median),
        "max_ms": round(ms[ms.len() - 1]),
        "inputs": described,
        "compiled_features": compiled_features(),
    });
    Ok(line.to_string())
}

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("error: {msg}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
