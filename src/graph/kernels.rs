//! Which of tract's matmul kernels this process may use.
//!
//! tract-linalg 0.23.9's Intel AMX int8 kernels (`avx512amx_mmm_i32_8x8`
//! and `_16x16`) read the B operand past its packed panel: they load one
//! 16-row tile (64 K values) per step for `ceil(K/64)` steps, while the
//! panel (`PackedI8K4`) is padded to a multiple of 4 K values only. When K
//! is not a multiple of 64 the last step reads up to 960 bytes past the
//! panel. The products are right (A is zero-padded to 64, so the extra
//! bytes are multiplied by zero), but the read faults when the panel ends
//! at an unmapped page: an intermittent SIGSEGV on hosts whose CPU has
//! AMX (Sapphire Rapids and later), seen on an Intel build host about once in
//! six runs of the stream tests. So the AMX int8 kernels are taken out of tract's
//! dispatch (it falls back to AVX-512 VNNI, bit-identical int32
//! accumulators) before the first graph is loaded.
//!
//! This is a process-wide default, below the environment: setting
//! `TRACT_CPU_ISA` yourself replaces it. Only on x86-64: tract panics on a
//! token that names another architecture's feature.

use std::sync::Once;

use tract_onnx::tract_core::knobs;

/// tract's knob for editing the detected instruction-set features.
const ISA_KNOB: &str = "TRACT_CPU_ISA";

/// The features taken out of tract's dispatch by default, in the knob's
/// syntax.
#[cfg(target_arch = "x86_64")]
pub(crate) const AVOIDED: &str = "-amx-int8";
/// Nothing to avoid on this architecture.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) const AVOIDED: &str = "";

/// Takes the faulty kernels out of tract's dispatch, once per process. Must
/// run before tract probes the machine (the first graph optimization); every
/// graph load calls it first.
pub(crate) fn avoid_faulty_kernels() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if AVOIDED.is_empty() {
            return;
        }
        if std::env::var_os(ISA_KNOB).is_some() {
            log::info!("{ISA_KNOB} is set: tract's kernel choice is left to it");
            return;
        }
        if let Err(e) = knobs::set_config_global(ISA_KNOB, AVOIDED) {
            // only if something else in this process set the knob first
            log::warn!("could not take the AMX int8 kernels out of tract's dispatch: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    use super::*;

    /// On a host without AMX the dispatch check holds trivially; the knob
    /// check does not.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_amx_int8_kernels_are_never_chosen() {
        avoid_faulty_kernels();
        if std::env::var_os(ISA_KNOB).is_some() {
            return; // the caller chose; nothing of ours to check
        }
        use tract_onnx::tract_core::tract_linalg::isa::{native, Isa};
        use tract_onnx::tract_core::tract_linalg::knobs::TRACT_CPU_ISA;
        assert_eq!(TRACT_CPU_ISA.get().as_deref(), Some(AVOIDED));
        let isa = native();
        assert!(
            !isa.has(Isa::X86_64AmxInt8),
            "tract still dispatches to AMX int8: {isa:?}"
        );
    }
}
