//! What the user sees: results on stdout, progress and logs on stderr.
//!
//! Progress is an indicatif spinner per phase when stderr is a terminal, plain lines
//! otherwise, and nothing with `-q` (errors still print). Installer output is streamed to
//! stderr above the spinner.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Reports the progress of a long operation: a phase, a line of output, the end.
pub trait Progress {
    fn phase(&self, text: &str);
    fn line(&self, text: &str);
    fn done(&self, text: &str);
}

/// Progress on stderr.
pub struct Ui {
    pub verbosity: Verbosity,
    tty: bool,
    current: Mutex<Option<(ProgressBar, Instant)>>,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Ui {
        Ui { verbosity, tty: std::io::stderr().is_terminal(), current: Mutex::new(None) }
    }

    /// A message for the user (not a result).
    pub fn info(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.print(msg);
        }
    }

    /// A warning: always shown.
    pub fn warn(&self, msg: &str) {
        self.print(&format!("warning: {msg}"));
    }

    /// A message shown even with `-q` (validation warnings that carry their own prefix).
    pub fn notice(&self, msg: &str) {
        self.print(msg);
    }

    fn print(&self, msg: &str) {
        // Messages carry paths, names and tool output: nothing reaches the terminal raw.
        let msg = crate::text::for_terminal_lines(msg);
        match &*self.current.lock().unwrap() {
            Some((pb, _)) => pb.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }
}

impl Progress for Ui {
    fn phase(&self, text: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let mut cur = self.current.lock().unwrap();
        if let Some((pb, _)) = cur.take() {
            pb.finish_and_clear();
        }
        if self.tty {
            let pb = ProgressBar::new_spinner();
            pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap());
            pb.set_message(text.to_string());
            pb.enable_steady_tick(Duration::from_millis(120));
            *cur = Some((pb, Instant::now()));
        } else {
            eprintln!("==> {text}");
            *cur = None;
        }
    }

    fn line(&self, text: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        self.print(&format!("    {text}"));
    }

    fn done(&self, text: &str) {
        let mut cur = self.current.lock().unwrap();
        let took = cur.as_ref().map(|(_, t)| t.elapsed());
        if let Some((pb, _)) = cur.take() {
            pb.finish_and_clear();
        }
        if self.verbosity != Verbosity::Quiet && !text.is_empty() {
            match took {
                Some(d) => eprintln!("✔ {text} ({:.1}s)", d.as_secs_f64()),
                None => eprintln!("✔ {text}"),
            }
        }
    }
}

/// The one writer of results on stdout. With `--json`, every record is one line of the
/// envelope `{"type": TYPE, "data": DATA}` (JSON Lines); without it, text meant for people.
/// A closed pipe (`lxcprov list | head -1`) surfaces as an `io::ErrorKind::BrokenPipe` error,
/// which the binary treats as a quiet end.
pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    /// One JSON Lines record of the envelope.
    pub fn record<T: serde::Serialize + ?Sized>(&self, kind: &str, data: &T) -> std::io::Result<()> {
        let line = envelope(kind, data)?;
        self.write(&(line + "\n"))
    }

    /// Text for people (written as is).
    pub fn text(&self, s: &str) -> std::io::Result<()> {
        self.write(s)
    }

    fn write(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(s.as_bytes())?;
        out.flush()
    }
}

/// `{"type": KIND, "data": DATA}` as one line (no newline).
pub fn envelope<T: serde::Serialize + ?Sized>(kind: &str, data: &T) -> std::io::Result<String> {
    #[derive(serde::Serialize)]
    struct Envelope<'a, T: ?Sized> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }
    serde_json::to_string(&Envelope { kind, data }).map_err(std::io::Error::other)
}
