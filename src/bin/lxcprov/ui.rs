//! Progress on stderr: an indicatif spinner per phase (and a bar per lab) when stderr is a
//! terminal, plain lines otherwise, and nothing with `-q` (errors and notices still print).
//! Installer output is streamed to stderr above the spinner.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lxcprov::output::{Batch, Observer, Verbosity};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        let msg = lxcprov::text::for_terminal_lines(msg);
        match &*self.current.lock().unwrap() {
            Some((pb, _)) => pb.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }
}

impl Observer for Ui {
    fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn info(&self, msg: &str) {
        Ui::info(self, msg)
    }

    fn warn(&self, msg: &str) {
        Ui::warn(self, msg)
    }

    fn notice(&self, msg: &str) {
        Ui::notice(self, msg)
    }

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

    fn batch(&self, label: &str, total: usize) -> Box<dyn Batch + '_> {
        let tty = self.tty && self.verbosity != Verbosity::Quiet;
        let multi = MultiProgress::new();
        let bar = multi.add(ProgressBar::new(total as u64));
        if tty {
            bar.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} [{elapsed}]").unwrap());
            bar.set_prefix(label.to_string());
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Box::new(UiBatch {
            tty,
            show: self.verbosity != Verbosity::Quiet,
            multi,
            total: bar,
            items: Mutex::new(vec![]),
        })
    }
}

/// A lab's progress: a spinner per item above a bar of the whole on a terminal, one line per
/// finished item otherwise.
struct UiBatch {
    tty: bool,
    show: bool,
    multi: MultiProgress,
    total: ProgressBar,
    items: Mutex<Vec<(String, ProgressBar)>>,
}

impl Batch for UiBatch {
    fn start(&self, item: &str) {
        if !self.tty {
            return;
        }
        let b = self.multi.insert_before(&self.total, ProgressBar::new_spinner());
        b.set_style(ProgressStyle::with_template("  {spinner} {prefix:20} {msg}").unwrap());
        b.set_prefix(item.to_string());
        b.set_message("working");
        b.enable_steady_tick(Duration::from_millis(150));
        self.items.lock().unwrap().push((item.to_string(), b));
    }

    fn finish(&self, item: &str, line: &str) {
        let line = lxcprov::text::for_terminal_lines(line);
        let mut items = self.items.lock().unwrap();
        match items.iter().position(|(n, _)| n == item) {
            Some(i) => items.remove(i).1.finish_with_message(line),
            None if self.show => eprintln!("{line}"),
            None => {}
        }
        self.total.inc(1);
    }
}

impl Drop for UiBatch {
    fn drop(&mut self) {
        self.total.finish_and_clear();
    }
}
