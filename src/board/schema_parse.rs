// Parsing and validation of a board profile: part of `schema.rs` (included
// there, so also compiled by `build.rs`). Every check reports the dotted key
// and the line; the parser goes on after an error so that one build shows
// every problem of a profile.

type Table<'i> = DeTable<'i>;
type Value<'i> = Spanned<DeValue<'i>>;

/// A table being read: its dotted path and the line of its header.
struct At<'t, 'i> {
    table: &'t Table<'i>,
    path: String,
    pos: usize,
}

impl<'t, 'i> At<'t, 'i> {
    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn get(&self, k: &str) -> Option<&'t Value<'i>> {
        self.table
            .iter()
            .find(|(key, _)| key.get_ref().as_ref() == k)
            .map(|(_, v)| v)
    }
}

struct Parser<'a> {
    file: &'a str,
    src: &'a str,
    errors: Vec<ProfileError>,
}

impl Parser<'_> {
    fn line(&self, pos: usize) -> usize {
        let end = pos.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&mut self, pos: usize, key: &str, message: String) {
        let line = Some(self.line(pos));
        self.errors.push(ProfileError {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            message,
        });
    }

    /// Reports keys of `at` not in `known`.
    fn known(&mut self, at: &At<'_, '_>, known: &[&str]) {
        for (k, _) in at.table.iter() {
            let name: &str = k.get_ref();
            if !known.contains(&name) {
                let msg = format!("unknown key (expected one of: {})", known.join(", "));
                self.err(k.span().start, &at.key(name), msg);
            }
        }
    }

    fn required<'t, 'i>(&mut self, at: &At<'t, 'i>, k: &str) -> Option<&'t Value<'i>> {
        let v = at.get(k);
        if v.is_none() {
            let where_ = if at.path.is_empty() {
                "the file".to_string()
            } else {
                format!("[{}]", at.path)
            };
            self.err(
                at.pos,
                &at.key(k),
                format!("missing (required in {where_})"),
            );
        }
        v
    }

    fn table<'t, 'i>(&mut self, at: &At<'t, 'i>, k: &str, known: &[&str]) -> Option<At<'t, 'i>> {
        let v = self.required(at, k)?;
        self.as_table(at, k, v, known)
    }

    fn as_table<'t, 'i>(
        &mut self,
        at: &At<'t, 'i>,
        k: &str,
        v: &'t Value<'i>,
        known: &[&str],
    ) -> Option<At<'t, 'i>> {
        match v.get_ref() {
            DeValue::Table(t) => {
                let sub = At {
                    table: t,
                    path: at.key(k),
                    pos: key_pos(at.table, k).unwrap_or(v.span().start),
                };
                self.known(&sub, known);
                Some(sub)
            }
            other => {
                let msg = format!("expected a table, found {}", other.type_str());
                self.err(v.span().start, &at.key(k), msg);
                None
            }
        }
    }

    fn string(&mut self, at: &At<'_, '_>, k: &str) -> Option<(String, usize)> {
        let v = self.required(at, k)?;
        self.as_string(at, k, v)
    }

    fn as_string(&mut self, at: &At<'_, '_>, k: &str, v: &Value<'_>) -> Option<(String, usize)> {
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_string(), v.span().start)),
            None => {
                let msg = format!("expected a string, found {}", v.get_ref().type_str());
                self.err(v.span().start, &at.key(k), msg);
                None
            }
        }
    }

    fn int_value(&mut self, key: &str, v: &Value<'_>, min: i64, max: i64) -> Option<i64> {
        let parsed = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok());
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    v.span().start,
                    key,
                    format!("{n} is out of range {min}..={max}"),
                );
                None
            }
            None => {
                let msg = format!(
                    "expected an integer in {min}..={max}, found {}",
                    v.get_ref().type_str()
                );
                self.err(v.span().start, key, msg);
                None
            }
        }
    }

    fn int(&mut self, at: &At<'_, '_>, k: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.required(at, k)?;
        self.int_value(&at.key(k), v, min, max)
    }

    fn level(&mut self, at: &At<'_, '_>, k: &str) -> Option<Level> {
        let (s, pos) = self.string(at, k)?;
        match s.as_str() {
            "high" => Some(Level::High),
            "low" => Some(Level::Low),
            _ => {
                let msg = format!("expected \"high\" or \"low\", found {s:?}");
                self.err(pos, &at.key(k), msg);
                None
            }
        }
    }

    /// A non-empty string of printable ASCII without spaces (a path, a name).
    fn word(&mut self, at: &At<'_, '_>, k: &str, what: &str) -> Option<String> {
        let (s, pos) = self.string(at, k)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
            let msg = format!("expected {what} (non-empty, no spaces), found {s:?}");
            self.err(pos, &at.key(k), msg);
            return None;
        }
        Some(s)
    }

    fn dev_path(&mut self, at: &At<'_, '_>, k: &str) -> Option<String> {
        let pos = at.get(k).map_or(at.pos, |v| v.span().start);
        let s = self.word(at, k, "a device path")?;
        if !s.starts_with("/dev/") {
            self.err(
                pos,
                &at.key(k),
                format!("expected a path under /dev/, found {s:?}"),
            );
            return None;
        }
        Some(s)
    }

    fn cores(&mut self, at: &At<'_, '_>, k: &str, cores: Option<u16>) -> Option<Vec<u16>> {
        let v = self.required(at, k)?;
        let key = at.key(k);
        let Some(items) = v.get_ref().as_array() else {
            let msg = format!(
                "expected an array of core numbers, found {}",
                v.get_ref().type_str()
            );
            self.err(v.span().start, &key, msg);
            return None;
        };
        if items.is_empty() {
            self.err(
                v.span().start,
                &key,
                "expected at least one core".to_string(),
            );
            return None;
        }
        let max = cores.map_or(1023, |c| i64::from(c) - 1);
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            let n = u16::try_from(self.int_value(&key, item, 0, max)?).ok()?;
            if out.contains(&n) {
                self.err(item.span().start, &key, format!("core {n} listed twice"));
                return None;
            }
            out.push(n);
        }
        Some(out)
    }
}

/// Where key `k` is written in `t` (the header of a `[table]`).
fn key_pos(t: &Table<'_>, k: &str) -> Option<usize> {
    t.iter()
        .find(|(key, _)| key.get_ref().as_ref() == k)
        .map(|(key, _)| key.span().start)
}
