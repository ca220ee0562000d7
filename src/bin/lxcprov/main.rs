//! The `lxcprov` binary: parse, run one command, map the outcome to an exit code
//! (0 success, 1 checks found failures, 2 any error, 130 interrupted).

mod cli;
mod commands;
mod out;
mod ui;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // libvirt must not print errors itself: lxcprov reports them, once.
    virt::error::clear_error_callback();
    lxcprov::interrupt::install();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = cli.global.json;
    match commands::run(cli) {
        Ok(commands::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(commands::Outcome::ChecksFailed) => ExitCode::from(1),
        Ok(commands::Outcome::Code(c)) => ExitCode::from(c),
        // A reader that went away (`lxcprov list | head -1`) is a quiet end.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors quote paths and names a user or a file gave: escaped for the terminal.
            let shown = |s: String| lxcprov::text::for_terminal_lines(&s);
            eprintln!("lxcprov: error: {}", shown(e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", shown(cause.to_string()));
            }
            if json {
                // Machines get the same error as one JSON line on stdout.
                let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                let data = serde_json::json!({"message": e.to_string(), "chain": chain});
                let _ = out::Out::new(true).record("error", &data);
            }
            let interrupted = lxcprov::interrupt::requested()
                || e.chain().any(|c| c.downcast_ref::<lxcprov::interrupt::Interrupted>().is_some());
            ExitCode::from(if interrupted { 130 } else { 2 })
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
