//! Operations: one file per user-level operation, each an options struct (where it has
//! options) and one function, in the manner of cargo's `src/ops`. Command files in the
//! binary only turn arguments into options, call one of these, and print the result.

pub mod bootstrap;
pub mod console;
pub mod create;
pub mod destroy;
pub mod exec;
pub mod lab_collect;
pub mod lab_down;
pub mod lab_report;
pub mod lab_reset;
pub mod lab_self_service;
pub mod lab_snapshot;
pub mod lab_up;
pub mod list;
pub mod outdated;
pub mod rebuild;
pub mod reset;
pub mod seccomp_learn;
pub mod snapshot;
pub mod start;
pub mod stop;
pub mod verify;
