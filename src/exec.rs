//! Running external programs: argv as data, one runner.
//!
//! Every process lxcprov starts is a [`Cmd`] (program, arguments, environment) handed to a
//! [`Runner`]. No shell is involved, so no value can be re-read as shell syntax. The child
//! gets `/dev/null` as stdin and an environment built from scratch (`PATH`, `LC_ALL=C`
//! and what the `Cmd` adds), never the caller's. Its output is streamed line by line; on
//! failure the error carries the argv, the exit status and the last lines of output.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// A command to run, as data: cheap to build, compare and print.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment variables (the base is `PATH` and `LC_ALL=C`).
    pub env: Vec<(String, String)>,
    /// Run unprivileged and bounded: for a host tool that parses what a container controls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confine: Option<Confine>,
}

/// An unprivileged user and resource limits for a [`Cmd`]: no supplementary groups, no
/// capabilities (a non-zero uid keeps none across execve), `no_new_privs`, and ceilings on
/// address space, CPU time and the size of any file it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Confine {
    pub uid: u32,
    pub gid: u32,
    pub max_memory: u64,
    pub max_cpu_secs: u64,
    pub max_file: u64,
}

impl Confine {
    /// `nobody`, 1 GiB of address space, 120 s of CPU, files up to 256 MiB.
    pub const NOBODY: Confine =
        Confine { uid: 65534, gid: 65534, max_memory: 1 << 30, max_cpu_secs: 120, max_file: 256 << 20 };
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd { program: program.into(), args: vec![], env: vec![], confine: None }
    }

    pub fn confined(mut self, c: Confine) -> Cmd {
        self.confine = Some(c);
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The argv, program first.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone()).chain(self.args.iter().cloned()).collect()
    }

    /// A copy-pasteable rendering, for humans only (never executed).
    pub fn display(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", quote(v)));
        env.chain(self.argv().iter().map(|a| quote(a))).collect::<Vec<_>>().join(" ")
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// POSIX-shell quoting for display.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A command that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{program} is not installed (not found on PATH); {hint}")]
    NotFound { program: String, hint: String },
    #[error("could not start `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` {status}{}", tail_block(.tail))]
    Failed { cmd: String, status: String, code: Option<i32>, tail: Vec<String> },
    #[error("`{cmd}` was interrupted")]
    Interrupted { cmd: String },
}

fn tail_block(tail: &[String]) -> String {
    if tail.is_empty() {
        " (it printed nothing)".into()
    } else {
        let rule = "-".repeat(72);
        format!("; its last output:\n{rule}\n{}\n{rule}", tail.join("\n"))
    }
}

/// How many lines of output a failure keeps.
const TAIL_LINES: usize = 25;

/// Runs commands.
pub trait Runner: Send + Sync {
    /// Runs `cmd`, passing each output line (stdout and stderr) to `on_line`.
    fn run(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<(), CommandError>;

    /// Runs `cmd` and returns its stdout.
    fn output(&self, cmd: &Cmd) -> Result<String, CommandError> {
        let mut out = String::new();
        self.run(cmd, &mut |l| {
            out.push_str(l);
            out.push('\n');
        })?;
        Ok(out)
    }
}

/// The real runner.
#[derive(Default)]
pub struct SystemRunner {
    /// Echo `+ argv` to stderr before each command (`-v`).
    pub echo: bool,
}

/// Finds `program` on `PATH` (or takes it as is when it contains a `/`).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which Debian package provides a tool lxcprov drives.
pub fn install_hint(program: &str) -> String {
    let pkg = match program {
        "dnf" | "dnf5" | "yum" => "dnf",
        "debootstrap" => "debootstrap",
        "virt-xml-validate" => "libvirt-clients",
        "xmllint" => "libxml2-utils",
        "createrepo_c" => "createrepo-c",
        "rpmbuild" | "rpmsign" | "rpm" => "rpm",
        "cp" => "coreutils",
        _ => return format!("install {program} and try again"),
    };
    format!("install it with `apt-get install {pkg}` (or run scripts/setup-host.sh)")
}

impl Runner for SystemRunner {
    fn run(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<(), CommandError> {
        let program = which(&cmd.program)
            .ok_or_else(|| CommandError::NotFound { program: cmd.program.clone(), hint: install_hint(&cmd.program) })?;
        if self.echo {
            eprintln!("+ {}", cmd.display());
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
        let mut command = Command::new(&program);
        // A child must not outlive lxcprov: killed with it (SIGKILL included), it cannot go
        // on writing into a partial tree that the next run would then trip over.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            let confine = cmd.confine;
            command.pre_exec(move || {
                let err = std::io::Error::last_os_error;
                if let Some(c) = confine {
                    let limit = |r, v: u64| libc::setrlimit(r, &libc::rlimit { rlim_cur: v, rlim_max: v });
                    if limit(libc::RLIMIT_AS, c.max_memory) != 0
                        || limit(libc::RLIMIT_CPU, c.max_cpu_secs) != 0
                        || limit(libc::RLIMIT_FSIZE, c.max_file) != 0
                        || libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                        || libc::syscall(libc::SYS_setresgid, c.gid, c.gid, c.gid) != 0
                        || libc::syscall(libc::SYS_setresuid, c.uid, c.uid, c.uid) != 0
                        || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    {
                        return Err(err());
                    }
                }
                // After the uid change, which clears it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(err());
                }
                Ok(())
            });
        }
        let mut child = command
            .args(&cmd.args)
            .env_clear()
            .env("PATH", path)
            .env("LC_ALL", "C")
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CommandError::Spawn { cmd: cmd.display(), source })?;
        // Merge both streams through a channel so lines arrive in (roughly) their order.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let mut readers = vec![];
        let stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                            if tx.send(line).is_err() {
                                break;
                            }
                        }
                    }
                }
            }));
        }
        drop(tx);
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut killed = false;
        loop {
            let line = match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(l) => l,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // SIGTERM/SIGHUP reach only lxcprov (SIGINT reaches the whole group):
                    // stop the child so the cleanup can run now, not when it finishes.
                    if crate::interrupt::requested() && !killed {
                        let _ = child.kill();
                        killed = true;
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            on_line(&line);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child.wait().map_err(|source| CommandError::Spawn { cmd: cmd.display(), source })?;
        if status.success() {
            return Ok(());
        }
        use std::os::unix::process::ExitStatusExt;
        if crate::interrupt::requested() {
            return Err(CommandError::Interrupted { cmd: cmd.display() });
        }
        let status_text = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => "failed".into(),
        };
        Err(CommandError::Failed { cmd: cmd.display(), status: status_text, code: status.code(), tail: tail.into() })
    }
}

/// Runs an interactive command (a console) on the user's terminal, with `TERM` passed on.
/// Returns its exit status.
pub fn interactive(cmd: &Cmd) -> Result<i32, CommandError> {
    let program = which(&cmd.program)
        .ok_or_else(|| CommandError::NotFound { program: cmd.program.clone(), hint: install_hint(&cmd.program) })?;
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let mut c = Command::new(program);
    c.args(&cmd.args).env_clear().env("PATH", path);
    if let Ok(t) = std::env::var("TERM") {
        c.env("TERM", t);
    }
    let status = c.status().map_err(|source| CommandError::Spawn { cmd: cmd.display(), source })?;
    Ok(status.code().unwrap_or(1))
}

/// A runner for tests: records every command and answers from a script.
#[derive(Default)]
pub struct RecordingRunner {
    pub calls: Mutex<Vec<Cmd>>,
    /// Replies by program name: (lines to print, success?). Unscripted commands succeed silently.
    pub replies: Mutex<VecDeque<(String, Vec<String>, bool)>>,
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a reply for the next call of `program`.
    pub fn reply(&self, program: &str, lines: &[&str], ok: bool) {
        self.replies.lock().unwrap().push_back((
            program.to_string(),
            lines.iter().map(|s| s.to_string()).collect(),
            ok,
        ));
    }

    pub fn calls(&self) -> Vec<Cmd> {
        self.calls.lock().unwrap().clone()
    }
}

impl Runner for RecordingRunner {
    fn run(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<(), CommandError> {
        self.calls.lock().unwrap().push(cmd.clone());
        let mut replies = self.replies.lock().unwrap();
        if let Some(pos) = replies.iter().position(|(p, _, _)| *p == cmd.program) {
            let (_, lines, ok) = replies.remove(pos).unwrap();
            for l in &lines {
                on_line(l);
            }
            if !ok {
                return Err(CommandError::Failed {
                    cmd: cmd.display(),
                    status: "exited with status 1".into(),
                    code: Some(1),
                    tail: lines,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_display() {
        assert_eq!(quote("--installroot=/a/b"), "--installroot=/a/b");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn runs_and_streams_lines() {
        let r = SystemRunner::default();
        let out = r.output(&Cmd::new("echo").args(["a", "b c"])).unwrap();
        assert_eq!(out, "a b c\n");
    }

    #[test]
    fn environment_is_not_inherited() {
        std::env::set_var("LXCPROV_SECRET_TEST", "leak");
        let out = SystemRunner::default().output(&Cmd::new("env")).unwrap();
        assert!(!out.contains("LXCPROV_SECRET_TEST"), "{out}");
        assert!(out.contains("LC_ALL=C"));
    }

    #[test]
    fn failure_carries_status_and_tail() {
        let r = SystemRunner::default();
        let e = r.run(&Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]), &mut |_| {}).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("exited with status 3") && s.contains("oops"), "{s}");
        assert!(matches!(e, CommandError::Failed { code: Some(3), .. }));
    }

    #[test]
    fn missing_program_is_named() {
        let e = SystemRunner::default().run(&Cmd::new("lxcprov-no-such-tool"), &mut |_| {}).unwrap_err();
        assert!(matches!(e, CommandError::NotFound { .. }));
        assert!(e.to_string().contains("lxcprov-no-such-tool is not installed"));
    }

    #[test]
    fn recording_runner_records_and_replies() {
        let r = RecordingRunner::new();
        r.reply("dnf", &["boom"], false);
        assert!(r.run(&Cmd::new("dnf"), &mut |_| {}).is_err());
        assert!(r.run(&Cmd::new("dnf"), &mut |_| {}).is_ok());
        assert_eq!(r.calls().len(), 2);
    }
}

#[cfg(test)]
mod confine_tests {
    use super::*;

    #[test]
    #[ignore = "root only (setresuid): cargo test --lib -- --ignored (scripts/test.sh)"]
    fn a_confined_command_runs_as_nobody_bounded_without_privileges() {
        let cmd = Cmd::new("sh")
            .args([
                "-c",
                "id -u; id -G; grep -e CapEff -e NoNewPrivs /proc/self/status; ulimit -v; ulimit -t; ulimit -f",
            ])
            .confined(Confine::NOBODY);
        let out = SystemRunner { echo: false }.output(&cmd).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "65534", "{out}");
        assert_eq!(lines[1], "65534", "no supplementary groups: {out}");
        assert!(lines[2].ends_with("0000000000000000") && lines[3].ends_with('1'), "{out}");
        assert_eq!(&lines[4..], ["1048576", "120", "524288"], "{out}");
    }
}
