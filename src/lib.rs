//! lxcprov: provision secure libvirt-LXC containers.
//!
//! What it touches on the host, all as root: root filesystems under
//! `/var/lib/libvirt/filesystems/NAME`, its cache under `/var/cache/lxcprov`, its state
//! under `/var/lib/lxcprov`, and libvirt domains and networks through the `virt` crate.
//! Everything else (profiles, the catalog, rendering, plans) is pure and needs no root.

pub mod app;
pub mod audit;
pub mod bootstrap;
pub mod cli;
pub mod create;
pub mod distro;
pub mod doctor;
pub mod exec;
pub mod facts;
pub mod fsutil;
pub mod host;
pub mod interrupt;
pub mod lab;
pub mod libvirt;
pub mod lifecycle;
pub mod mcs;
pub mod name;
pub mod output;
pub mod password;
pub mod paths;
pub mod probe;
pub mod profile;
pub mod registry;
pub mod render;
pub mod text;
pub mod verify;
pub mod yaml;
