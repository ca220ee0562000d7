//! lxcprov: provision secure libvirt-LXC containers.
//!
//! What it touches on the host, all as root: root filesystems under
//! `/var/lib/libvirt/filesystems/NAME`, its cache under `/var/cache/lxcprov`, its state
//! under `/var/lib/lxcprov`, and libvirt domains and networks through the `virt` crate.
//! Everything else (profiles, the catalog, rendering, plans) is pure and needs no root.
//!
//! This library never sees command-line types: the `lxcprov` binary turns its arguments
//! into the options of one operation ([`ops`]: [`ops::create::CreateOptions`], ...), runs it
//! with a [`context::Context`] that carries its [`output::Observer`], and prints the result.
//! The library prints nothing. `docs/architecture.md` puts every module on a floor; a
//! module imports only its floor and those below (`tests/layers.rs` holds that).
//!
//! The public surface is what the binary and the integration tests use; the registries,
//! records, passwords and the undo and worker-pool mechanisms are the library's own
//! (`pub(crate)`).

pub mod bootstrap;
pub mod cgroups;
pub mod container;
pub mod context;
pub mod distro;
pub mod doctor;
pub mod enter;
pub mod exec;
pub mod facts;
pub mod fsutil;
pub mod host;
pub(crate) mod idmap;
pub mod import;
pub mod interrupt;
pub mod lab;
pub mod libvirt;
pub mod mac;
pub mod mcs;
pub mod name;
pub mod ops;
pub mod outdated;
pub mod output;
pub(crate) mod password;
pub mod paths;
pub mod plan;
pub(crate) mod pool;
pub mod profile;
pub mod provision;
pub mod render;
pub(crate) mod revert;
pub mod sbom;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub(crate) mod state;
pub mod storage;
pub mod text;
pub mod verify;
pub mod yaml;
