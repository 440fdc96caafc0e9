//! The semantic checks of a parsed manifest: values schema 1 allows, digests
//! and paths. They need no file system; the first failure, in schema order,
//! is reported.

use std::collections::HashMap;
use std::path::Path;

use super::manifest::join;
use super::{BundleError, GraphRole, InputColor, Invalid, Manifest, MANIFEST, SCHEMA};

/// The mask tokens the official SAM decoder outputs.
const MASK_TOKENS: u32 = 4;

/// The most boxes a frame prompts with ([`crate::prompt::MAX_BOXES`]).
const MAX_BOXES: u32 = crate::prompt::MAX_BOXES as u32;

/// The most refinement rounds per box.
const MAX_REFINE_ROUNDS: u32 = 2;

/// A failed check, before the manifest path is attached.
enum Failure {
    Invalid(String, Invalid),
    Outside {
        field: String,
        entry: String,
        reason: &'static str,
    },
}

impl Failure {
    fn at(self, path: &Path) -> BundleError {
        let path = path.to_path_buf();
        match self {
            Failure::Invalid(field, problem) => BundleError::Invalid {
                path,
                field,
                problem,
            },
            Failure::Outside {
                field,
                entry,
                reason,
            } => BundleError::OutsideBundle {
                path,
                field,
                entry,
                reason: reason.to_string(),
            },
        }
    }
}

fn invalid(field: impl Into<String>, problem: Invalid) -> Failure {
    Failure::Invalid(field.into(), problem)
}

impl Manifest {
    /// Checks the values schema 1 allows; `path` names the manifest in errors.
    /// Does not look at the files (see [`super::Bundle::open`]).
    pub fn validate(&self, path: &Path) -> Result<(), BundleError> {
        self.check().map_err(|f| f.at(path))
    }

    fn check(&self) -> Result<(), Failure> {
        if self.schema != SCHEMA {
            return Err(invalid(
                "schema",
                Invalid::Schema {
                    found: i64::from(self.schema),
                },
            ));
        }
        self.check_input()?;
        self.check_prompt()?;
        self.check_decoder()?;
        self.check_confidence()?;
        self.check_files()
    }

    fn check_input(&self) -> Result<(), Failure> {
        let input = &self.input;
        if input.size == 0 || !input.size.is_multiple_of(16) {
            return Err(invalid("input.size", Invalid::Size { found: input.size }));
        }
        at_least("input.channels", input.channels, 1)?;
        if input.color == InputColor::Rgb && input.channels != 3 {
            return Err(invalid(
                "input.color",
                Invalid::RgbChannels {
                    channels: input.channels,
                },
            ));
        }
        // E comes from the graphs (the contract checks it there); here only
        // what the prompt needs: the dense prompt averages S×S into 4E×4E
        // blocks of (S / 4E)² pixels.
        at_least("input.embedding_size", input.embedding_size, 1)?;
        let dense = 4 * u64::from(input.embedding_size);
        if !u64::from(input.size).is_multiple_of(dense) {
            return Err(invalid(
                "input.embedding_size",
                Invalid::EmbeddingSize {
                    size: input.size,
                    found: input.embedding_size,
                },
            ));
        }
        // `channels` is at least 1 and fits in `usize` on every target we build.
        let channels = input.channels as usize;
        for (name, values) in [("input.mean", &input.mean), ("input.std", &input.std)] {
            if values.len() != channels {
                return Err(invalid(
                    name,
                    Invalid::Length {
                        expected: channels,
                        found: values.len(),
                    },
                ));
            }
            for (i, &v) in values.iter().enumerate() {
                let field = format!("{name}[{i}]");
                finite(&field, v)?;
                if name == "input.std" && v <= 0.0 {
                    return Err(invalid(
                        field,
                        Invalid::OutOfRange {
                            expected: "> 0",
                            found: v,
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_prompt(&self) -> Result<(), Failure> {
        let p = &self.prompt;
        in_range("prompt.cam_threshold", p.cam_threshold, "in (0, 1]", |v| {
            v > 0.0 && v <= 1.0
        })?;
        at_least("prompt.min_component_px", p.min_component_px, 1)?;
        in_range("prompt.box_margin", p.box_margin, "in [0, 0.5)", |v| {
            (0.0..0.5).contains(&v)
        })?;
        in_range("prompt.dense_logit", p.dense_logit, "> 0", |v| v > 0.0)?;
        int_in("prompt.max_boxes", p.max_boxes, 1, MAX_BOXES)?;
        int_in(
            "prompt.refine_rounds",
            p.refine_rounds,
            0,
            MAX_REFINE_ROUNDS,
        )?;
        in_range(
            "gate.presence_threshold",
            self.gate.presence_threshold,
            "in [0, 1]",
            |v| (0.0..=1.0).contains(&v),
        )
    }

    fn check_confidence(&self) -> Result<(), Failure> {
        let Some(c) = &self.confidence else {
            return Ok(());
        };
        in_range(
            "confidence.presence_margin",
            c.presence_margin,
            "in [0, 0.5]",
            |v| (0.0..=0.5).contains(&v),
        )?;
        for (field, v) in [
            ("confidence.min_iou_prediction", c.min_iou_prediction),
            ("confidence.min_agreement", c.min_agreement),
        ] {
            in_range(field, v, "in [0, 1]", |v| (0.0..=1.0).contains(&v))?;
        }
        in_range("confidence.min_cam_peak", c.min_cam_peak, ">= 0", |v| {
            v >= 0.0
        })
    }

    fn check_decoder(&self) -> Result<(), Failure> {
        let d = &self.decoder;
        if d.mask_tokens.is_empty() {
            return Err(invalid("decoder.mask_tokens", Invalid::NoMaskTokens));
        }
        for (i, &token) in d.mask_tokens.iter().enumerate() {
            let field = format!("decoder.mask_tokens[{i}]");
            if token >= MASK_TOKENS {
                return Err(invalid(field, Invalid::MaskToken { found: token }));
            }
            if d.mask_tokens[..i].contains(&token) {
                return Err(invalid(field, Invalid::DuplicateMaskToken { token }));
            }
        }
        finite("decoder.mask_threshold", d.mask_threshold)
    }

    /// Graph entries, then checksums: path form, digest, each file once.
    fn check_files(&self) -> Result<(), Failure> {
        let mut seen: HashMap<&str, String> = HashMap::new();
        for role in GraphRole::ALL {
            let g = self.graphs.get(role);
            let base = format!("graphs.{}", role.key());
            check_path(&format!("{base}.file"), &g.file)?;
            check_sha256(&format!("{base}.sha256"), &g.sha256)?;
            once(&mut seen, &format!("{base}.file"), &g.file)?;
        }
        for (entry, digest) in &self.checksums {
            let field = join("checksums", entry);
            check_path(&field, entry)?;
            if entry == MANIFEST {
                return Err(invalid(field, Invalid::ListsManifest));
            }
            check_sha256(&field, digest)?;
            once(&mut seen, &field, entry)?;
        }
        Ok(())
    }
}

fn at_least(field: &str, value: u32, min: u32) -> Result<(), Failure> {
    if value < min {
        return Err(invalid(field, Invalid::TooSmall { min, found: value }));
    }
    Ok(())
}

fn int_in(field: &str, value: u32, min: u32, max: u32) -> Result<(), Failure> {
    if !(min..=max).contains(&value) {
        return Err(invalid(
            field,
            Invalid::IntOutOfRange {
                min,
                max,
                found: value,
            },
        ));
    }
    Ok(())
}

fn finite(field: &str, value: f32) -> Result<(), Failure> {
    if !value.is_finite() {
        return Err(invalid(field, Invalid::NonFinite { found: value }));
    }
    Ok(())
}

/// Finite and `ok(value)`; `expected` says what `ok` accepts.
fn in_range(
    field: &str,
    value: f32,
    expected: &'static str,
    ok: impl Fn(f32) -> bool,
) -> Result<(), Failure> {
    finite(field, value)?;
    if !ok(value) {
        return Err(invalid(
            field,
            Invalid::OutOfRange {
                expected,
                found: value,
            },
        ));
    }
    Ok(())
}

fn check_sha256(field: &str, digest: &str) -> Result<(), Failure> {
    let ok = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        return Err(invalid(
            field,
            Invalid::Sha256 {
                found: digest.to_string(),
            },
        ));
    }
    Ok(())
}

/// A path in the bundle: relative, `/`-separated names, none `..`.
fn check_path(field: &str, entry: &str) -> Result<(), Failure> {
    let outside = |reason| Failure::Outside {
        field: field.to_string(),
        entry: entry.to_string(),
        reason,
    };
    // `C:...` is absolute (or drive-relative) on Windows.
    let drive = matches!(entry.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic());
    if entry.starts_with('/') || entry.starts_with('\\') || drive || Path::new(entry).is_absolute()
    {
        return Err(outside("is an absolute path"));
    }
    let names: Vec<&str> = entry.split(['/', '\\']).collect();
    if names.contains(&"..") {
        return Err(outside("goes up with `..`"));
    }
    let bad_form = entry.contains('\\')
        || entry.contains('\0')
        || names.iter().any(|n| n.is_empty() || *n == ".");
    if bad_form {
        return Err(invalid(
            field,
            Invalid::PathForm {
                found: entry.to_string(),
            },
        ));
    }
    Ok(())
}

/// Records that `field` lists `entry`, or fails when another field did.
fn once<'m>(
    seen: &mut HashMap<&'m str, String>,
    field: &str,
    entry: &'m str,
) -> Result<(), Failure> {
    if let Some(first) = seen.get(entry) {
        return Err(invalid(
            field,
            Invalid::DuplicatePath {
                found: entry.to_string(),
                first: first.clone(),
            },
        ));
    }
    seen.insert(entry, field.to_string());
    Ok(())
}
