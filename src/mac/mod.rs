//! Mandatory access control (paper, sections 3.1 and 3.4): MCS levels, the registry of
//! static level pairs, the host-wide audit of levels in use, and the active MCS probe.

pub mod audit;
pub mod mcs;
pub mod probe;
pub mod registry;
