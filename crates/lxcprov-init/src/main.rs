//! lxcprov-init: the container's first process. It installs the container's seccomp filters
//! from `/.lxcprov/filter.bpf` (compiled on the host by lxcprov, bind-mounted read-only), then
//! execs the real init with its arguments: `lxcprov-init /sbin/init ARGS...`.
//!
//! `filter.bpf` holds one or more classic BPF programs, each a little-endian `u32`
//! instruction count followed by that many 8-byte `struct sock_filter`s. They are installed
//! in file order. A missing or malformed file stops the container (fail closed).
//!
//! `no_new_privs` is set only when it must be: the kernel accepts a filter from a task
//! without it only if the task has CAP_SYS_ADMIN in its user namespace. libvirt's container
//! root usually has it (the profiles keep sys_admin for systemd), so setuid programs and
//! file capabilities keep working in the guest; if it lacks it, no_new_privs is set (and
//! said on the console) rather than running unfiltered.
//!
//! `lxcprov-init --probe` is the proof `lxcprov verify --probe` runs inside the container's
//! namespaces: for each of a fixed list of harmless calls (invalid arguments, so that an
//! allowed call changes nothing), it prints the result without the filter and, in a child,
//! with this same filter file installed: `probe NAME NR unfiltered=R filtered=R`, where R is
//! `ok`, an errno number or `signal:N`.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

const FILTER: &str = "/.lxcprov/filter.bpf";
/// More than any policy lxcprov compiles (the kernel's limit is 4096 instructions a program).
const MAX_BYTES: u64 = 1 << 20;

fn die(msg: &str) -> ! {
    eprintln!("lxcprov-init: {msg}");
    std::process::exit(127)
}

fn load(path: &str) -> Result<Vec<Vec<libc::sock_filter>>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut buf = vec![];
    f.take(MAX_BYTES + 1).read_to_end(&mut buf).map_err(|e| format!("{path}: {e}"))?;
    if buf.len() as u64 > MAX_BYTES {
        return Err(format!("{path}: larger than {MAX_BYTES} bytes"));
    }
    let mut progs = vec![];
    let mut rest = &buf[..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(format!("{path}: truncated"));
        }
        let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
        if n == 0 || n > 4096 || rest.len() < n * 8 {
            return Err(format!("{path}: bad program length {n}"));
        }
        let prog = rest[..n * 8]
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        progs.push(prog);
        rest = &rest[n * 8..];
    }
    if progs.is_empty() {
        return Err(format!("{path}: no program"));
    }
    Ok(progs)
}

fn install_one(prog: &mut [libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    // SAFETY: fprog points at a live, correctly sized program for the duration of the call.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Installs every program; sets no_new_privs only if the kernel asks for it (EACCES).
fn install(progs: &mut [Vec<libc::sock_filter>], quiet: bool) -> Result<(), String> {
    for (i, p) in progs.iter_mut().enumerate() {
        match install_one(p) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                // SAFETY: plain prctl with integer arguments.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
                }
                if !quiet {
                    eprintln!(
                        "lxcprov-init: no CAP_SYS_ADMIN in the container: no_new_privs set for the seccomp filter"
                    );
                }
                install_one(p).map_err(|e| format!("seccomp filter {i}: {e}"))?;
            }
            Err(e) => return Err(format!("seccomp filter {i}: {e}")),
        }
    }
    Ok(())
}

/// The probes: harmless calls (invalid arguments) whose unfiltered result differs from a
/// filter's errno on a normal kernel.
fn probes() -> Vec<(&'static str, libc::c_long, [libc::c_long; 5])> {
    vec![
        ("getppid", libc::SYS_getppid, [0; 5]),
        ("perf_event_open", libc::SYS_perf_event_open, [0, 0, -1, -1, 0]),
        ("keyctl", libc::SYS_keyctl, [0xffff, 0, 0, 0, 0]),
        ("add_key", libc::SYS_add_key, [0, 0, 0, 0, 0]),
        ("bpf", libc::SYS_bpf, [0xffff, 0, 0, 0, 0]),
        ("userfaultfd", libc::SYS_userfaultfd, [0xffff_ffff, 0, 0, 0, 0]),
        ("open_by_handle_at", libc::SYS_open_by_handle_at, [-1, 0, 0, 0, 0]),
        ("init_module", libc::SYS_init_module, [0, 0, 0, 0, 0]),
        ("io_uring_setup", libc::SYS_io_uring_setup, [0, 0, 0, 0, 0]),
        ("ptrace", libc::SYS_ptrace, [0xffff, 0, 0, 0, 0]),
    ]
}

fn call(nr: libc::c_long, a: [libc::c_long; 5]) -> i32 {
    // SAFETY: each probe passes invalid arguments or NULL pointers, which the kernel rejects.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(255)
    } else {
        0
    }
}

fn show(code: i32) -> String {
    if code == 0 {
        "ok".into()
    } else {
        code.to_string()
    }
}

fn probe(path: &str) -> i32 {
    let progs = match load(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lxcprov-init: {e}");
            return 2;
        }
    };
    for (name, nr, args) in probes() {
        let unfiltered = call(nr, args);
        // SAFETY: single-threaded; the child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut p = progs.clone();
            if install(&mut p, true).is_err() {
                unsafe { libc::_exit(254) };
            }
            let code = call(nr, args);
            unsafe { libc::_exit(code.min(253)) };
        }
        if pid < 0 {
            eprintln!("lxcprov-init: fork: {}", std::io::Error::last_os_error());
            return 2;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let filtered = if libc::WIFSIGNALED(status) {
            format!("signal:{}", libc::WTERMSIG(status))
        } else if libc::WEXITSTATUS(status) == 254 {
            "install-failed".into()
        } else {
            show(libc::WEXITSTATUS(status))
        };
        println!("probe {name} {nr} unfiltered={} filtered={filtered}", show(unfiltered));
    }
    0
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "--probe") {
        let path = args.get(2).and_then(|a| a.to_str()).unwrap_or(FILTER);
        std::process::exit(probe(path));
    }
    if args.len() < 2 {
        die("usage: lxcprov-init INIT [ARG...] | lxcprov-init --probe [FILTER]");
    }
    let mut progs = load(FILTER).unwrap_or_else(|e| die(&format!("{e}; not starting the container's init unfiltered")));
    if let Err(e) = install(&mut progs, false) {
        die(&format!("{e}; not starting the container's init unfiltered"));
    }
    let argv: Vec<CString> = args[1..]
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| die("an argument holds a NUL byte")))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: argv is NUL-terminated C strings; the environment is inherited as is.
    unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
    die(&format!("exec {}: {}", args[1].to_string_lossy(), std::io::Error::last_os_error()))
}
