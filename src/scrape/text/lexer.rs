//! The pieces of one line: quoted strings and their escapes (`"C:\\dir \"x\""`), values
//! (`NaN`, `+Inf`, `1.5e3`), metric names, tokens, and a byte cursor over the line.

use std::borrow::Cow;

/// A quoted string after its opening quote, up to and past the closing one.
pub(super) fn quoted<'a>(cur: &mut Cursor<'a>) -> Result<Cow<'a, str>, String> {
    let start = cur.pos;
    let bytes = cur.s.as_bytes();
    let mut i = start;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let raw = &cur.s[start..i];
                cur.pos = i + 1;
                return Ok(if escaped { Cow::Owned(unescape_label(raw)) } else { Cow::Borrowed(raw) });
            }
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    Err("unterminated quoted string".into())
}

/// `\\`, `\"`, `\n` unescaped; any other escape kept as written (Prometheus' behaviour).
pub(super) fn unescape_label(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `# HELP` text: `\\` and `\n` unescaped (and `\"`, which OpenMetrics allows).
pub(super) fn unescape_help(raw: &str) -> Cow<'_, str> {
    if raw.contains('\\') {
        Cow::Owned(unescape_label(raw))
    } else {
        Cow::Borrowed(raw)
    }
}

/// A value as the Go parser reads it: a float, `NaN`, `±Inf` in any case.
pub fn parse_value(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

pub(super) fn is_metric_name(s: &str) -> bool {
    !s.is_empty() && !s.as_bytes()[0].is_ascii_digit() && s.bytes().all(is_name_byte)
}

/// The first word and what follows its separating space.
pub(super) fn split_token(s: &str) -> (&str, &str) {
    match s.bytes().position(|b| b == b' ' || b == b'\t') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// At most 40 characters of untrusted text, for an error message.
pub(super) fn clip(s: &str) -> String {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

pub(super) struct Cursor<'a> {
    pub(super) s: &'a str,
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    pub(super) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    /// Skips spaces and tabs; whether any were skipped.
    pub(super) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }
    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    /// Up to the next space or tab.
    pub(super) fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }
}
