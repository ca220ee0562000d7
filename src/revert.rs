//! One undo mechanism for every operation, in the manner of Incus's `shared/revert`: an
//! operation that makes things creates a [`Revert`], adds an undo step right after each thing
//! it makes, and calls [`Revert::success`] at the end. On failure, [`Revert::fail`] runs the
//! steps newest first and says what was undone; dropped without either (an early return, a
//! panic), it undoes silently. A rule such as "a domain that could not be undefined keeps its
//! tree" is one step that reads a flag an earlier-run step set.

use anyhow::Result;

/// What one undo step did.
#[derive(Debug, PartialEq, Eq)]
pub enum Undone {
    /// The thing is gone (named for the user: "domain web1").
    Removed(String),
    /// The thing was kept on purpose, and why (with what the user can do).
    Kept(String),
    /// There was nothing left to undo.
    Nothing,
}

type Step<'a> = (String, Box<dyn FnOnce() -> Result<Undone> + 'a>);

/// Undo steps of an operation in progress.
#[derive(Default)]
pub struct Revert<'a> {
    steps: Vec<Step<'a>>,
}

/// What [`Revert::fail`] did, newest first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reverted {
    pub removed: Vec<String>,
    pub kept: Vec<String>,
    /// Steps that failed: what, and the error.
    pub failed: Vec<String>,
}

impl Reverted {
    /// One clause for an error message: "removed what this run created: a, b; kept ...".
    pub fn describe(&self) -> String {
        let mut s = if self.removed.is_empty() {
            "nothing had been created".to_string()
        } else {
            format!("removed what this run created: {}", self.removed.join(", "))
        };
        for k in &self.kept {
            s += &format!("; {k}");
        }
        for f in &self.failed {
            s += &format!("; could not undo {f}");
        }
        s
    }
}

impl<'a> Revert<'a> {
    pub fn new() -> Revert<'a> {
        Revert { steps: vec![] }
    }

    /// Registers how to undo `what`, just made.
    pub fn add(&mut self, what: impl Into<String>, undo: impl FnOnce() -> Result<Undone> + 'a) {
        self.steps.push((what.into(), Box::new(undo)));
    }

    /// Has anything been made?
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The operation succeeded: nothing is undone.
    pub fn success(mut self) {
        self.steps.clear();
    }

    /// The operation failed: undoes every step, newest first.
    pub fn fail(mut self) -> Reverted {
        self.run()
    }

    fn run(&mut self) -> Reverted {
        let mut r = Reverted::default();
        while let Some((what, undo)) = self.steps.pop() {
            match undo() {
                Ok(Undone::Removed(s)) => r.removed.push(s),
                Ok(Undone::Kept(s)) => r.kept.push(s),
                Ok(Undone::Nothing) => {}
                Err(e) => r.failed.push(format!("{what}: {e:#}")),
            }
        }
        r
    }
}

impl Drop for Revert<'_> {
    fn drop(&mut self) {
        let _ = self.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    #[test]
    fn a_failed_operation_is_undone_newest_first_and_said() {
        let order = RefCell::new(vec![]);
        let domain_may_exist = Cell::new(false);
        let mut r = Revert::new();
        r.add("tree", || {
            order.borrow_mut().push("tree");
            Ok(if domain_may_exist.get() {
                Undone::Kept("kept the tree: the domain may still exist".into())
            } else {
                Undone::Removed("tree".into())
            })
        });
        r.add("domain", || {
            order.borrow_mut().push("domain");
            domain_may_exist.set(true);
            anyhow::bail!("libvirtd is gone")
        });
        let done = r.fail();
        assert_eq!(*order.borrow(), ["domain", "tree"]);
        assert_eq!(done.kept, ["kept the tree: the domain may still exist"]);
        assert_eq!(done.failed, ["domain: libvirtd is gone"]);
        assert!(done.describe().starts_with("nothing had been created; kept the tree"), "{}", done.describe());
    }

    #[test]
    fn success_undoes_nothing_and_a_drop_undoes_everything() {
        let n = Cell::new(0);
        let mut r = Revert::new();
        r.add("a", || {
            n.set(n.get() + 1);
            Ok(Undone::Removed("a".into()))
        });
        r.success();
        assert_eq!(n.get(), 0);
        {
            let mut r = Revert::new();
            r.add("b", || {
                n.set(n.get() + 1);
                Ok(Undone::Nothing)
            });
        }
        assert_eq!(n.get(), 1);
    }
}
