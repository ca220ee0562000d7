//! The `lxcprov` binary: parse, run, map the outcome to an exit code
//! (0 success, 1 verification found failures, 2 any error).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // libvirt must not print errors itself: lxcprov reports them, once.
    virt::error::clear_error_callback();
    lxcprov::interrupt::install();
    let cli = match lxcprov::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = cli.global.json;
    match lxcprov::app::run(cli) {
        Ok(lxcprov::app::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(lxcprov::app::Outcome::ChecksFailed) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lxcprov: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if json {
                // Machines get the same error as one JSON line on stdout.
                let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                let ev = serde_json::json!({"type": "error", "data": {"message": e.to_string(), "chain": chain}});
                println!("{ev}");
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
