//! `lxcprov completions SHELL` (hidden): the shell completion script, generated from the
//! same clap definition the binary parses with, so it cannot drift from the real options.
//! `scripts/package.sh` installs the bash, zsh and fish ones. Touches nothing.

use super::Outcome;
use crate::cli::Cli;
use crate::out::Out;
use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Result<String> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "lxcprov", &mut buf);
    Ok(String::from_utf8(buf)?)
}

pub fn run(out: &Out, shell: Shell) -> Result<Outcome> {
    let s = script(shell)?;
    if out.json {
        out.record("completions", &serde_json::json!({"shell": shell.to_string(), "script": s}))?;
    } else {
        out.text(&s)?;
    }
    Ok(Outcome::Ok)
}
