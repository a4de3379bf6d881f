//! Cutting a body into lines where InfluxDB 1.x cuts it (`scanLine`): at each newline,
//! except one inside a quoted string field value (a string may hold newlines) or right
//! after a backslash. Everything that reads lines back from the log (the sinks' batch
//! splitting, QuestDB, the dead letters) cuts them the same way, or a string with a
//! newline would come apart into two broken lines.

/// The lines of `body`, each without its newline; empty lines included.
pub fn lines(body: &[u8]) -> Lines<'_> {
    Lines { body, pos: 0 }
}

/// Iterator over the lines of a body; see [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Lines<'_> {
    /// Where the next line starts (the body's length once past the last).
    pub fn position(&self) -> usize {
        self.pos.min(self.body.len())
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let body = self.body;
        if self.pos >= body.len() {
            return None;
        }
        let start = self.pos;
        let end = line_end(body, start).min(body.len());
        self.pos = end + 1;
        let line = &body[start..end];
        // A backslash before the body's last newline leaves that newline in the line.
        Some(line.strip_suffix(b"\n").unwrap_or(line))
    }
}

/// Where the line starting at `start` ends: the index of its newline (or past the end).
fn line_end(b: &[u8], start: usize) -> usize {
    let newline = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |p| start + p);
    let segment = &b[start..newline];
    let backslashes = segment.iter().rev().take_while(|&&c| c == b'\\').count();
    // Without a quote no string can hold the newline, and an even run of backslashes
    // before it escapes itself, not the newline: the common case, found by memchr alone.
    if memchr::memchr(b'"', segment).is_none() && backslashes % 2 == 0 {
        return newline;
    }
    scan_line(b, start)
}

/// InfluxDB's `scanLine`, quirks included: once a space has been seen, `=` and `,` are
/// counted, and a quote opens or closes a string only where a value may start.
fn scan_line(b: &[u8], start: usize) -> usize {
    let mut i = start;
    let (mut quoted, mut fields) = (false, false);
    let (mut equals, mut commas) = (0usize, 0usize);
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && c == b'=' {
                equals += 1;
                i += 1;
                continue;
            }
            if !quoted && c == b',' {
                commas += 1;
                i += 1;
                continue;
            }
            if c == b'"' && equals > commas {
                quoted = !quoted;
                i += 1;
                continue;
            }
        }
        if c == b'\n' && !quoted {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::lines;

    fn cut(body: &str) -> Vec<&str> {
        lines(body.as_bytes()).map(|l| std::str::from_utf8(l).expect("utf8")).collect()
    }

    #[test]
    fn cuts_at_newlines_outside_strings() {
        assert_eq!(cut("a f=1\nb f=2\n"), ["a f=1", "b f=2"]);
        assert_eq!(cut("a f=1\n\nb f=2"), ["a f=1", "", "b f=2"]);
        assert_eq!(cut("m s=\"x\ny\",t=1 5\nm f=1"), ["m s=\"x\ny\",t=1 5", "m f=1"]);
        assert_eq!(
            cut("m s=\"a\\\"\nb\"\nn f=1"),
            ["m s=\"a\\\"\nb\"", "n f=1"],
            "an escaped quote stays in the string"
        );
    }

    #[test]
    fn a_backslash_escapes_the_newline_after_it() {
        assert_eq!(cut("m,t=a\\\nb f=1\nn f=2"), ["m,t=a\\\nb f=1", "n f=2"]);
        assert_eq!(cut("m,t=a\\\\\nn f=2"), ["m,t=a\\\\", "n f=2"], "two backslashes escape each other");
        assert_eq!(cut("m f=1\\\n"), ["m f=1\\"], "the body's last newline is dropped");
        assert_eq!(cut("m f=1\\"), ["m f=1\\"]);
    }

    #[test]
    fn a_quote_in_a_key_opens_nothing() {
        assert_eq!(cut("m\"x f=1\nn f=2"), ["m\"x f=1", "n f=2"]);
        assert_eq!(cut("m f\"x=1\nn f=2"), ["m f\"x=1", "n f=2"]);
    }
}
