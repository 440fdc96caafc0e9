//! What the commands share: finding the bundle, opening the pipeline,
//! statistics.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sammix::backend::{BackendChoice, BackendRequest};
use sammix::bundle::{Bundle, TrustedKey, TrustedKeys};
use sammix::decoder::NativeDecoder;
use sammix::kernels::Level;
use sammix::pipeline::{DecoderKind, Pipeline};
use serde::Serialize;

use super::{BackendArg, BundleArg};

/// Where the bundled model lives in the source tree.
const BUNDLED: &str = "models/sammix-us-tiny";

/// The demo clip and its masks, relative to a bundle.
pub const DEMO_CLIP: &str = "demo/clip.y4m";
/// Ground-truth masks of the demo clip, `NNNNNN.png` by frame index.
pub const DEMO_MASKS: &str = "demo/masks";

/// The bundle folder: `--bundle`, else `$SAMMIX_BUNDLE`, else
/// `models/sammix-us-tiny` under the current folder, else the one in the
/// source tree this binary was built from.
pub fn bundle_dir(arg: &BundleArg) -> PathBuf {
    if let Some(dir) = &arg.bundle {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("SAMMIX_BUNDLE") {
        return dir.into();
    }
    let here = Path::new(BUNDLED);
    if here.is_dir() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(BUNDLED)
}

/// The keys a bundle's signature may be made with: the compiled-in board
/// profile's `security.trusted_keys`, then `--trusted-key` files.
pub fn trusted_keys(arg: &BundleArg) -> anyhow::Result<TrustedKeys> {
    let mut keys = TrustedKeys::from_profile(sammix::board::profile::current())?;
    for path in &arg.trusted_keys {
        keys.add(TrustedKey::from_file(path)?);
    }
    Ok(keys)
}

/// What the board profile's `[backend]` and `--backend` ask of the
/// encoder's backend.
pub fn backend_request(arg: &BackendArg) -> anyhow::Result<BackendRequest> {
    let profile = sammix::board::profile::current();
    let source = sammix::board::profile::SOURCE;
    let mut request = BackendRequest::encoder(profile, source, arg.backend.map(Into::into));
    if arg.backend_required {
        if request.choice != BackendChoice::Gpu {
            bail!(
                "--backend-required needs the gpu backend (--backend gpu, or the board \
                 profile's backend.encoder = \"gpu\"); asked: {}",
                request.choice.as_str()
            );
        }
        request
            .required_by
            .get_or_insert_with(|| "--backend-required".to_string());
    }
    Ok(request)
}

/// Opens and checks the bundle, then loads its graphs, with `decoder`
/// running the mask decoder and the encoder on the backend `backend` and
/// the board profile ask for.
pub fn open(
    arg: &BundleArg,
    decoder: DecoderKind,
    backend: &BackendArg,
) -> anyhow::Result<(Bundle, Pipeline)> {
    let request = backend_request(backend)?;
    let dir = bundle_dir(arg);
    let keys = trusted_keys(arg)?;
    let bundle = Bundle::open_trusted(&dir, &keys)?;
    log::info!(
        "bundle {} opened: {}; signature {}",
        bundle.manifest().name,
        dir.display(),
        bundle.provenance()
    );
    let mut pipeline = Pipeline::with_decoder(&bundle, decoder)
        .with_context(|| format!("cannot load the graphs of bundle {}", dir.display()))?;
    pipeline.select_encoder_backend(&request)?;
    log::info!("encoder backend: {}", pipeline.encoder_backend_name());
    if decoder == DecoderKind::Native {
        if let Some(d) = pipeline.native_decoder() {
            log::info!("{}", native_summary(d));
        }
    }
    Ok((bundle, pipeline))
}

/// What the native decoder runs: weights and kernels.
pub fn native_summary(d: &NativeDecoder) -> String {
    let k = d.kernels();
    let ops = k.op_names();
    format!(
        "native decoder: {} weights, {} masks of {n}×{n}, kernels {} (gemm_i8 {}, gemm_f32 {}, rows {}; CPU best {})",
        if d.is_int8() { "int8" } else { "f32" },
        d.mask_count(),
        k.name(),
        ops.gemm_i8,
        ops.gemm_f32,
        ops.rows,
        Level::best(),
        n = 4 * d.embedding_size()
    )
}

/// The precision of the three graphs, e.g. `int8-dynamic` or
/// `classifier f32, encoder int8-dynamic, decoder int8-dynamic`.
pub fn precision(bundle: &Bundle) -> String {
    let g = &bundle.manifest().graphs;
    let p = [
        g.classifier.precision,
        g.encoder.precision,
        g.decoder.precision,
    ];
    if p.iter().all(|&x| x == p[0]) {
        p[0].as_str().to_string()
    } else {
        format!(
            "classifier {}, encoder {}, decoder {}",
            p[0].as_str(),
            p[1].as_str(),
            p[2].as_str()
        )
    }
}

/// Median and tail of a set of milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl Stats {
    /// Statistics of `values` (linear interpolation between order
    /// statistics, as numpy's default percentile); all zero when empty.
    pub fn of(values: &[f64]) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let x = p * (v.len() - 1) as f64;
            let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
        };
        Stats {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: v[v.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_interpolate_like_numpy() {
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(s.p50, 2.5);
        assert!((s.p95 - 3.85).abs() < 1e-12);
        assert_eq!(s.max, 4.0);
        assert_eq!(Stats::of(&[]).n, 0);
    }
}
