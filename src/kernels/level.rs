//! Instruction-set levels: what the CPU has, detected once, and the
//! `SAMMIX_KERNELS` override that may only lower it.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that lowers the kernel level (for CI and for
/// comparing levels on one machine): `scalar`, `avx2`, `avx512-vnni`, `neon`,
/// `neon-dot` or `neon-i8mm`. A level above what the CPU has, or one of another
/// architecture, is ignored with a warning.
pub const ENV_OVERRIDE: &str = "SAMMIX_KERNELS";

/// An instruction-set level. Levels are ordered: a CPU that runs a level runs
/// every lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Plain Rust, the reference and the fallback; runs everywhere.
    Scalar,
    /// x86-64 with AVX2 and FMA (Haswell and later).
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// AVX2 + FMA with AVX-512 VNNI and VL (`vpdpbusd` on ymm registers;
    /// Ice Lake, Sapphire Rapids, Zen 4 and later).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// aarch64 Advanced SIMD (every ARMv8-A core).
    #[cfg(target_arch = "aarch64")]
    Neon,
    /// NEON with the dot-product extension (`sdot`, ARMv8.2-A `dotprod`).
    #[cfg(target_arch = "aarch64")]
    NeonDot,
    /// NEON with dot product and the int8 matrix multiply (`smmla`, `i8mm`).
    #[cfg(target_arch = "aarch64")]
    NeonI8mm,
}

impl Level {
    /// Every level this build knows, lowest first (whether or not this CPU
    /// runs it).
    pub const ALL: &'static [Level] = &[
        Level::Scalar,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2Fma,
        #[cfg(target_arch = "x86_64")]
        Level::Avx512Vnni,
        #[cfg(target_arch = "aarch64")]
        Level::Neon,
        #[cfg(target_arch = "aarch64")]
        Level::NeonDot,
        #[cfg(target_arch = "aarch64")]
        Level::NeonI8mm,
    ];

    /// The level's name as `SAMMIX_KERNELS` spells it.
    pub fn env_name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Fma => "avx2",
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Vnni => "avx512-vnni",
            #[cfg(target_arch = "aarch64")]
            Level::Neon => "neon",
            #[cfg(target_arch = "aarch64")]
            Level::NeonDot => "neon-dot",
            #[cfg(target_arch = "aarch64")]
            Level::NeonI8mm => "neon-i8mm",
        }
    }

    /// Whether this CPU runs the level (asks the CPU; not cached).
    pub fn is_available(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Fma => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Vnni => {
                Level::Avx2Fma.is_available()
                    && std::is_x86_feature_detected!("avx512vnni")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Level::NeonDot => {
                Level::Neon.is_available() && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Level::NeonI8mm => {
                Level::NeonDot.is_available() && std::arch::is_aarch64_feature_detected!("i8mm")
            }
        }
    }

    /// The highest level this CPU runs, detected once per process.
    pub fn best() -> Level {
        static BEST: OnceLock<Level> = OnceLock::new();
        *BEST.get_or_init(|| {
            Level::ALL
                .iter()
                .rev()
                .copied()
                .find(|l| l.is_available())
                .unwrap_or(Level::Scalar)
        })
    }

    /// The level the process uses: [`Level::best`], lowered by
    /// `SAMMIX_KERNELS` when that is set to a lower level. Decided once.
    pub fn selected() -> Level {
        static SELECTED: OnceLock<Level> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let best = Level::best();
            match std::env::var(ENV_OVERRIDE) {
                Ok(value) => apply_override(best, &value),
                Err(_) => best,
            }
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.env_name())
    }
}

/// What an override `value` (trimmed, case-insensitive) makes of `best`:
/// a known level no higher than `best`, else `best` with a warning.
pub(crate) fn apply_override(best: Level, value: &str) -> Level {
    let value = value.trim();
    if value.is_empty() {
        return best;
    }
    let known = [
        "scalar",
        "avx2",
        "avx512-vnni",
        "neon",
        "neon-dot",
        "neon-i8mm",
    ];
    match Level::ALL
        .iter()
        .copied()
        .find(|l| l.env_name().eq_ignore_ascii_case(value))
    {
        Some(level) if level <= best => level,
        Some(level) => {
            log::warn!(
                "{ENV_OVERRIDE}={value} asks for {level}, above what this CPU runs ({best}): ignored"
            );
            best
        }
        None if known.iter().any(|k| k.eq_ignore_ascii_case(value)) => {
            log::warn!(
                "{ENV_OVERRIDE}={value}: not a level of this architecture: ignored, using {best}"
            );
            best
        }
        None => {
            log::warn!(
                "{ENV_OVERRIDE}={value}: unknown (expected one of {}): ignored, using {best}",
                known.join(", ")
            );
            best
        }
    }
}
