//! Operations: one file per user-level operation, each an options struct and one function.

pub mod reset;
pub mod seccomp_learn;
