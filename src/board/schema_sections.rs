// The sections of a board profile, one method per table: part of
// `schema.rs` (included there, so also compiled by `build.rs`), on top of
// the reading helpers of `schema_parse.rs`. The limits here are the schema's
// rules; the comments in `board/*.toml` say where the values come from.

impl Parser<'_> {
    fn profile(&mut self, root: &Table<'_>) -> Option<Profile> {
        let root = At {
            table: root,
            path: String::new(),
            pos: 0,
        };
        let top = [
            "board", "cpu", "threads", "capture", "gpio", "watchdog", "bundle", "output", "security",
            "backend",
        ];
        self.known(&root, &top);
        let (name, description) = self.board(&root);
        let cpu = self.cpu(&root);
        let threads = self.threads(&root, cpu.as_ref().map(|c| c.cores));
        let capture = self.capture(&root);
        let gpio = match root.get("gpio") {
            None => Some(None),
            Some(v) => self.gpio(&root, v).map(Some),
        };
        let watchdog = self.watchdog(&root);
        let bundle = self
            .table(&root, "bundle", &["path"])
            .and_then(|b| self.word(&b, "path", "a folder path"));
        let sinks = self.sinks(&root);
        let trusted_keys = match root.get("security") {
            None => Some(Vec::new()),
            Some(_) => self.security(&root),
        };
        let backend = self.backend(&root);
        Some(Profile {
            name: name?.into(),
            description: description?.into(),
            cpu: cpu?,
            threads: threads?,
            capture: capture?,
            gpio: gpio?,
            watchdog: watchdog?,
            bundle: bundle?.into(),
            sinks: sinks?.into(),
            trusted_keys: trusted_keys?
                .into_iter()
                .map(Cow::Owned)
                .collect::<Vec<_>>()
                .into(),
            backend: backend?,
        })
    }

    fn board(&mut self, root: &At<'_, '_>) -> (Option<String>, Option<String>) {
        let Some(b) = self.table(root, "board", &["name", "description"]) else {
            return (None, None);
        };
        let stem = std::path::Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        let stem = stem.to_string();
        let name = self.string(&b, "name").and_then(|(s, pos)| {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
            if !ok {
                let msg = format!("expected lowercase letters, digits and '-', found {s:?}");
                self.err(pos, "board.name", msg);
                None
            } else if s != stem {
                let msg = format!("{s:?} differs from the file name ({stem}.toml)");
                self.err(pos, "board.name", msg);
                None
            } else {
                Some(s)
            }
        });
        let description = self.string(&b, "description").and_then(|(s, pos)| {
            if s.trim().is_empty() {
                self.err(pos, "board.description", "must not be empty".to_string());
                None
            } else {
                Some(s)
            }
        });
        (name, description)
    }

    fn cpu(&mut self, root: &At<'_, '_>) -> Option<Cpu> {
        let known = ["target_cpu", "target_features", "level", "cores"];
        let c = self.table(root, "cpu", &known)?;
        let target_cpu = self.word(&c, "target_cpu", "a rustc target-cpu name");
        let features = self.string(&c, "target_features").and_then(|(s, pos)| {
            // (Found by fuzzing: `split_at(1)` panicked on a feature that
            // starts with a multi-byte character.)
            let ok = s.split(',').filter(|f| !f.is_empty()).all(|f| {
                let name = f.strip_prefix('+').or_else(|| f.strip_prefix('-'));
                name.is_some_and(|name| {
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
                })
            });
            if ok {
                Some(s)
            } else {
                let msg = format!("expected \"\" or a list like \"+feat,-feat\", found {s:?}");
                self.err(pos, "cpu.target_features", msg);
                None
            }
        });
        let level = self.string(&c, "level").and_then(|(s, pos)| {
            let level = CpuLevel::from_name(&s);
            if level.is_none() {
                let names: Vec<_> = CpuLevel::ALL.iter().map(|(n, _)| *n).collect();
                let msg = format!(
                    "unknown level {s:?} (expected one of: {})",
                    names.join(", ")
                );
                self.err(pos, "cpu.level", msg);
            }
            level.map(|l| (l, pos))
        });
        let cores = self.int(&c, "cores", 1, 1024).map(|n| n as u16);
        let (target_cpu, features, (level, pos), cores) = (target_cpu?, features?, level?, cores?);
        if let Some(max) = known_core_level(&target_cpu) {
            if level > max || level.arch() == Some("x86_64") {
                let msg = format!(
                    "{target_cpu} runs at most {:?}, not {:?}",
                    max.as_str(),
                    level.as_str()
                );
                self.err(pos, "cpu.level", msg);
                return None;
            }
        }
        let dot_off = features.split(',').any(|f| f == "-dotprod" || f == "-neon");
        if dot_off && level >= CpuLevel::NeonDot && level.arch() == Some("aarch64") {
            let msg = format!(
                "{:?} needs dotprod, which target_features turns off",
                level.as_str()
            );
            self.err(pos, "cpu.level", msg);
            return None;
        }
        Some(Cpu {
            target_cpu: target_cpu.into(),
            target_features: features.into(),
            level,
            cores,
        })
    }

    fn threads(&mut self, root: &At<'_, '_>, cores: Option<u16>) -> Option<Threads> {
        let t = self.table(root, "threads", &["capture", "inference", "output"])?;
        let capture = self.cores(&t, "capture", cores);
        let inference = self.cores(&t, "inference", cores);
        let output = self.cores(&t, "output", cores);
        Some(Threads {
            capture: capture?.into(),
            inference: inference?.into(),
            output: output?.into(),
        })
    }

    fn capture(&mut self, root: &At<'_, '_>) -> Option<Capture> {
        let known = ["device", "format", "width", "height", "fps"];
        let c = self.table(root, "capture", &known)?;
        let device = self.dev_path(&c, "device");
        let format = self.string(&c, "format").and_then(|(s, pos)| {
            let b = s.as_bytes();
            let ok = b.len() == 4
                && b.iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b' ');
            if ok {
                Some([b[0], b[1], b[2], b[3]])
            } else {
                let msg = format!(
                    "expected a V4L2 FourCC like \"YUYV\" (4 of A-Z 0-9 space), found {s:?}"
                );
                self.err(pos, "capture.format", msg);
                None
            }
        });
        let width = self.int(&c, "width", 16, 8192);
        let height = self.int(&c, "height", 16, 8192);
        let fps = self.int(&c, "fps", 1, 240);
        if let (Some(w), Some(v)) = (width, c.get("width")) {
            if w % 2 != 0 {
                self.err(
                    v.span().start,
                    "capture.width",
                    format!("{w} is odd (4:2:x formats need an even width)"),
                );
                return None;
            }
        }
        Some(Capture {
            device: device?.into(),
            format: format?,
            width: width? as u32,
            height: height? as u32,
            fps: fps? as u32,
        })
    }

    fn gpio(&mut self, root: &At<'_, '_>, v: &Value<'_>) -> Option<Gpio> {
        let known = ["chip", "freeze", "status_led", "fault_led"];
        let g = self.as_table(root, "gpio", v, &known)?;
        let chip = self.word(&g, "chip", "/dev/gpiochipN or a chip label");
        let freeze = self
            .table(&g, "freeze", &["line", "active", "debounce_ms"])
            .and_then(|f| {
                let line = self.int(&f, "line", 0, 1023);
                let active = self.level(&f, "active");
                let debounce = self.int(&f, "debounce_ms", 1, 1000);
                Some(InputLine {
                    line: line? as u32,
                    active: active?,
                    debounce_ms: debounce? as u32,
                })
            });
        let mut led = |name: &str| {
            self.table(&g, name, &["line", "active"]).and_then(|l| {
                let line = self.int(&l, "line", 0, 1023);
                let active = self.level(&l, "active");
                Some(OutputLine {
                    line: line? as u32,
                    active: active?,
                })
            })
        };
        let status = led("status_led");
        let fault = led("fault_led");
        let gpio = Gpio {
            chip: chip?.into(),
            freeze: freeze?,
            status_led: status?,
            fault_led: fault?,
        };
        let lines = [
            ("freeze", gpio.freeze.line),
            ("status_led", gpio.status_led.line),
            ("fault_led", gpio.fault_led.line),
        ];
        for (i, (a, la)) in lines.iter().enumerate() {
            if let Some((b, _)) = lines[i + 1..].iter().find(|(_, lb)| lb == la) {
                let pos = g
                    .get(b)
                    .and_then(|v| v.get_ref().as_table())
                    .and_then(|t| t.iter().find(|(k, _)| k.get_ref().as_ref() == "line"))
                    .map_or(g.pos, |(_, v)| v.span().start);
                let msg = format!("line {la} is already used by gpio.{a}");
                self.err(pos, &format!("gpio.{b}.line"), msg);
                return None;
            }
        }
        Some(gpio)
    }

    fn watchdog(&mut self, root: &At<'_, '_>) -> Option<Watchdog> {
        let known = ["device", "frame_timeout_ms", "pet_interval_ms"];
        let w = self.table(root, "watchdog", &known)?;
        let device = match w.get("device") {
            None => Some(None),
            Some(_) => self.dev_path(&w, "device").map(Some),
        };
        let timeout = self.int(&w, "frame_timeout_ms", 100, 600_000);
        let pet = self.int(&w, "pet_interval_ms", 100, 5_000);
        Some(Watchdog {
            device: device?.map(Cow::Owned),
            frame_timeout_ms: timeout? as u32,
            pet_interval_ms: pet? as u32,
        })
    }

    fn sinks(&mut self, root: &At<'_, '_>) -> Option<Vec<Sink>> {
        let o = self.table(root, "output", &["sinks"])?;
        let v = self.required(&o, "sinks")?;
        let Some(items) = v.get_ref().as_array() else {
            let msg = format!(
                "expected an array of \"KIND:PATH\", found {}",
                v.get_ref().type_str()
            );
            self.err(v.span().start, "output.sinks", msg);
            return None;
        };
        if items.is_empty() {
            self.err(
                v.span().start,
                "output.sinks",
                "expected at least one sink".to_string(),
            );
            return None;
        }
        let mut out: Vec<Sink> = Vec::with_capacity(items.len());
        let kinds: Vec<_> = SinkKind::ALL.iter().map(|(n, _)| *n).collect();
        for item in items.iter() {
            let (s, pos) = self.as_string(&o, "sinks", item)?;
            let parsed = s.split_once(':').and_then(|(k, p)| {
                let kind = SinkKind::ALL.iter().find(|(n, _)| *n == k)?.1;
                (!p.is_empty()).then(|| Sink {
                    kind,
                    path: p.to_string().into(),
                })
            });
            match parsed {
                Some(sink) if out.contains(&sink) => {
                    self.err(pos, "output.sinks", format!("{s:?} listed twice"));
                    return None;
                }
                Some(sink) => out.push(sink),
                None => {
                    let msg = format!(
                        "expected \"KIND:PATH\" with KIND one of {}, found {s:?}",
                        kinds.join(", ")
                    );
                    self.err(pos, "output.sinks", msg);
                    return None;
                }
            }
        }
        Some(out)
    }

    /// `[security]`: the public keys a bundle's signature may be made with.
    /// Only the form is checked here (a build script has no crypto): the
    /// base64 line of a minisign Ed25519 public key; the library parses
    /// each one fully and a test does so for every profile in `board/`.
    fn security(&mut self, root: &At<'_, '_>) -> Option<Vec<String>> {
        let t = self.table(root, "security", &["trusted_keys"])?;
        let v = self.required(&t, "trusted_keys")?;
        let Some(items) = v.get_ref().as_array() else {
            let msg = format!(
                "expected an array of minisign public keys, found {}",
                v.get_ref().type_str()
            );
            self.err(v.span().start, "security.trusted_keys", msg);
            return None;
        };
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items.iter() {
            let (k, pos) = self.as_string(&t, "trusted_keys", item)?;
            let k = k.trim().to_string();
            let base64 = k
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=');
            if k.len() != MINISIGN_KEY_LEN || !base64 || !k.starts_with("RW") {
                let msg = format!(
                    "expected a minisign Ed25519 public key ({MINISIGN_KEY_LEN} base64 characters \
                     starting with RW: the second line of a .pub file), found {k:?}"
                );
                self.err(pos, "security.trusted_keys", msg);
                return None;
            }
            if out.contains(&k) {
                self.err(pos, "security.trusted_keys", format!("{k:?} listed twice"));
                return None;
            }
            out.push(k);
        }
        Some(out)
    }
}

/// Characters in the base64 form of a minisign public key (42 bytes:
/// `Ed`, an 8-byte key ID, the 32-byte Ed25519 key).
const MINISIGN_KEY_LEN: usize = 56;
