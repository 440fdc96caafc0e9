use super::*;
use crate::board::schema::Backend;

fn profile(backend: Backend) -> Profile {
    let mut p = crate::board::profile::current().clone();
    p.name = "rk3588".into();
    p.backend = backend;
    p
}

#[test]
fn the_command_line_overrides_the_profile_and_required_needs_the_gpu() {
    let gpu_required = profile(Backend {
        encoder: BackendChoice::Gpu,
        required: true,
    });
    let r = BackendRequest::encoder(&gpu_required, "board/rk3588.toml", None);
    assert_eq!(r.choice, BackendChoice::Gpu);
    assert_eq!(r.accelerator(), Some(BackendKind::Gpu));
    assert_eq!(
        r.required(),
        Some("`backend.required = true` in board profile rk3588 (board/rk3588.toml)")
    );
    // `--backend cpu` or `auto` on the command line: nothing to require.
    for choice in [BackendChoice::Cpu, BackendChoice::Auto] {
        let r = BackendRequest::encoder(&gpu_required, "board/rk3588.toml", Some(choice));
        assert_eq!((r.choice, r.required()), (choice, None));
    }
    let r = BackendRequest::encoder(&gpu_required, "x", Some(BackendChoice::Cpu));
    assert_eq!(r.accelerator(), None);

    let default = profile(Backend::DEFAULT);
    assert_eq!(
        BackendRequest::encoder(&default, "x", None),
        BackendRequest::cpu()
    );
    let r = BackendRequest::encoder(&default, "x", Some(BackendChoice::Gpu));
    assert_eq!(
        (r.accelerator(), r.required()),
        (Some(BackendKind::Gpu), None)
    );
}

#[test]
fn choices_and_kinds_have_their_names() {
    for (name, choice) in BackendChoice::ALL {
        assert_eq!(choice.as_str(), name);
        assert_eq!(BackendChoice::from_name(name), Some(choice));
    }
    assert_eq!(BackendChoice::from_name("npu"), None);
    assert_eq!(BackendKind::Gpu.to_string(), "gpu");
    assert_eq!(
        serde_json::to_value(BackendKind::Cpu).unwrap(),
        serde_json::json!("cpu")
    );
}

#[test]
fn no_gpu_is_built_into_this_binary() {
    let err = BackendError::NotBuilt { why: NO_GPU };
    assert_eq!(
        err.to_string(),
        "not built into this binary (this binary was built without the GPU backend \
         (cargo build --features gpu: Vulkan through wgpu))"
    );
}
