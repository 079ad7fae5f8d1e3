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

/// Writes rendered output to stdout. A closed pipe (`| head`) is a normal end, not an error.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
