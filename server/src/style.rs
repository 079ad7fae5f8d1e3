//! Terminal colour, only when stdout/stderr is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;
use std::sync::OnceLock;

fn enabled(stream_is_tty: bool) -> bool {
    stream_is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn stdout_colour() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| enabled(std::io::stdout().is_terminal()))
}

fn paint(code: &str, s: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Added things (green).
pub fn added(s: &str) -> String {
    paint("32", s, stdout_colour())
}

/// Removed things (red).
pub fn removed(s: &str) -> String {
    paint("31", s, stdout_colour())
}

/// Changed things (yellow).
pub fn changed(s: &str) -> String {
    paint("33", s, stdout_colour())
}

/// Headings (bold).
pub fn bold(s: &str) -> String {
    paint("1", s, stdout_colour())
}

/// Secondary text (dim).
pub fn dim(s: &str) -> String {
    paint("2", s, stdout_colour())
}

/// The word "error" on stderr (bold red).
pub fn error(s: &str) -> String {
    paint("1;31", s, enabled(std::io::stderr().is_terminal()))
}

/// A count and its noun: "1 step", "1,234 steps".
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// 1234567 as "1,234,567".
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Appends a formatted line to a `String`.
#[macro_export]
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        writeln!($out, $($arg)*).expect("writing to a String cannot fail")
    }};
}

/// Writes to stdout, through a buffer, what `write` writes. A closed pipe (`| head`) is a
/// normal end, not an error: what is written after it is dropped.
pub fn emit_with(
    write: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = UntilClosed {
        inner: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        closed: false,
    };
    write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// A writer that takes everything once its reader has gone (a broken pipe).
struct UntilClosed<W> {
    inner: W,
    closed: bool,
}

impl<W: std::io::Write> UntilClosed<W> {
    fn unless_closed(&mut self, r: std::io::Result<()>) -> std::io::Result<()> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl<W: std::io::Write> std::io::Write for UntilClosed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.closed {
            let r = self.inner.write_all(buf);
            self.unless_closed(r)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.unless_closed(r)
    }
}

/// Writes rendered output to stdout. A closed pipe (`| head`) is a normal end, not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    emit_with(|w| Ok(w.write_all(text.as_bytes())?))
}
