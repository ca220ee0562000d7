//! Operations: one file per user-level operation, each an options struct and one function.

pub mod create;
pub mod lab_down;
pub mod lab_reset;
pub mod lab_up;
pub mod reset;
pub mod seccomp_learn;
