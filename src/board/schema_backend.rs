// `[backend]`: where a board runs its graph stages. Part of `schema.rs`
// (included there, so also compiled by `build.rs`: `std` and `toml` only).

/// `[backend]`: which backend runs the image encoder, and whether the CPU
/// may stand in for it. Absent: the encoder runs on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// `encoder`: the image encoder's backend.
    pub encoder: BackendChoice,
    /// `required`: a backend that cannot start fails the run before its
    /// first frame, and one lost mid-stream stops the stream, instead of
    /// the CPU taking over. Only with `encoder = "gpu"`.
    pub required: bool,
}

impl Backend {
    /// No `[backend]` table: the encoder on the CPU.
    pub const DEFAULT: Backend = Backend {
        encoder: BackendChoice::Cpu,
        required: false,
    };
}

/// The backend a graph stage asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    /// tract on the CPU: the reference, always there.
    Cpu,
    /// The GPU (Vulkan compute); the CPU stands in when it cannot start,
    /// unless required.
    Gpu,
    /// The GPU when it starts, else the CPU (never required).
    Auto,
}

impl BackendChoice {
    /// Every choice with its name in profiles and on the command line.
    pub const ALL: [(&'static str, BackendChoice); 3] = [
        ("cpu", BackendChoice::Cpu),
        ("gpu", BackendChoice::Gpu),
        ("auto", BackendChoice::Auto),
    ];

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(n, _)| n)
    }

    /// The choice of a profile name.
    pub fn from_name(s: &str) -> Option<BackendChoice> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, c)| *c)
    }
}

impl Parser<'_> {
    fn backend(&mut self, root: &At<'_, '_>) -> Option<Backend> {
        let Some(v) = root.get("backend") else {
            return Some(Backend::DEFAULT);
        };
        let b = self.as_table(root, "backend", v, &["encoder", "required"])?;
        let encoder = self.string(&b, "encoder").and_then(|(s, pos)| {
            let choice = BackendChoice::from_name(&s);
            if choice.is_none() {
                let names: Vec<_> = BackendChoice::ALL.iter().map(|(n, _)| *n).collect();
                let msg = format!(
                    "unknown backend {s:?} (expected one of: {})",
                    names.join(", ")
                );
                self.err(pos, "backend.encoder", msg);
            }
            choice
        });
        let required = match b.get("required") {
            None => Some((false, b.pos)),
            Some(v) => match v.get_ref().as_bool() {
                Some(r) => Some((r, v.span().start)),
                None => {
                    let msg = format!("expected true or false, found {}", v.get_ref().type_str());
                    self.err(v.span().start, "backend.required", msg);
                    None
                }
            },
        };
        let (encoder, (required, pos)) = (encoder?, required?);
        if required && encoder != BackendChoice::Gpu {
            let msg = format!(
                "`required = true` needs encoder = \"gpu\" (\"{}\" {})",
                encoder.as_str(),
                match encoder {
                    BackendChoice::Auto => "falls back to the CPU by definition",
                    _ => "always runs",
                }
            );
            self.err(pos, "backend.required", msg);
            return None;
        }
        Some(Backend { encoder, required })
    }
}
