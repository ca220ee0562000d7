//! `lxcprov manpages DIR` (hidden): one roff man page per command, generated with
//! clap_mangen from the clap definition: `lxcprov.1`, then `lxcprov-create.1`,
//! `lxcprov-lab.1`, `lxcprov-lab-up.1` and so on for every visible subcommand. Writes only
//! into DIR (created if missing); prints the path of each page it wrote.

use super::Outcome;
use crate::cli::Cli;
use crate::out::Out;
use anyhow::{Context as _, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Renders every page into `dir`; returns the paths written, parents before children.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Building the command fills in each subcommand's display name ("lxcprov-lab-up") and
    // bin name ("lxcprov lab up"), which clap_mangen uses for the title and synopsis.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = vec![];
    fn walk(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
        let man = clap_mangen::Man::new(cmd.clone()).manual("lxcprov manual");
        let path = dir.join(man.get_filename());
        let mut buf = Vec::new();
        man.render(&mut buf)?;
        lxcprov::fsutil::write_atomic(&path, &buf, 0o644)?;
        written.push(path);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, written)?;
        }
        Ok(())
    }
    walk(&cmd, dir, &mut written)?;
    Ok(written)
}

pub fn run(out: &Out, dir: &Path) -> Result<Outcome> {
    for p in write_all(dir)? {
        if out.json {
            out.record("manpage", &serde_json::json!({"path": p}))?;
        } else {
            out.text(&format!("{}\n", p.display()))?;
        }
    }
    Ok(Outcome::Ok)
}
