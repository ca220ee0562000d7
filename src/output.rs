//! How the library tells its caller what it is doing: the [`Observer`] the caller passes in.
//! The library prints nothing itself; the `lxcprov` binary implements the observer with
//! indicatif spinners on a terminal and plain lines otherwise, and writes results on stdout.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Progress and messages of an operation, for the user (never results).
pub trait Observer: Sync {
    /// How much the user asked to see.
    fn verbosity(&self) -> Verbosity;
    /// A message for the user (not a result); nothing with `-q`.
    fn info(&self, msg: &str);
    /// A warning: always shown.
    fn warn(&self, msg: &str);
    /// A message shown even with `-q` (validation warnings that carry their own prefix, a
    /// generated password shown once).
    fn notice(&self, msg: &str);
    /// A long phase begins (a spinner on a terminal).
    fn phase(&self, text: &str);
    /// A line of a tool's output during a phase.
    fn line(&self, text: &str);
    /// The phase ended; `text` says how.
    fn done(&self, text: &str);
    /// Work on `total` items at once (a lab's students) begins; `label` names it.
    fn batch(&self, label: &str, total: usize) -> Box<dyn Batch + '_>;
}

/// The items of a batch: each starts, then finishes with one line saying how it went.
pub trait Batch: Sync {
    fn start(&self, item: &str);
    fn finish(&self, item: &str, line: &str);
}

/// Sees nothing and shows nothing: what each of a lab's students runs with (their progress
/// is the batch's line), and what tests pass.
pub struct Silent;

impl Observer for Silent {
    fn verbosity(&self) -> Verbosity {
        Verbosity::Quiet
    }
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn notice(&self, _: &str) {}
    fn phase(&self, _: &str) {}
    fn line(&self, _: &str) {}
    fn done(&self, _: &str) {}
    fn batch(&self, _: &str, _: usize) -> Box<dyn Batch + '_> {
        Box::new(Silent)
    }
}

impl Batch for Silent {
    fn start(&self, _: &str) {}
    fn finish(&self, _: &str, _: &str) {}
}
