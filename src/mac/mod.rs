//! Mandatory access control across containers (paper, sections 3.1 and 3.4): the registry
//! of static level pairs, the host-wide audit of levels in use, and the active MCS probe.
//! (Parsing levels and contexts is [`crate::mcs`], a leaf that everything may use.)

pub mod audit;

pub mod registry;
