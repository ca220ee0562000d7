//! The runner every property shares: case counts (`FUZZ_CASES`), seeds (`FUZZ_SEED`), the
//! hang watchdog (`FUZZ_HANG_SECS`), the per-case CPU budget (`FUZZ_CASE_CPU_MS`), the
//! outcome counts, and `fuzz()`, which runs a strategy through a property with shrinking.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn total_cases() -> u64 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

fn seed() -> [u8; 32] {
    if let Ok(hex) = std::env::var("FUZZ_SEED") {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect();
        if let Ok(s) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return s;
        }
        panic!("FUZZ_SEED must be 64 hex digits");
    }
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).expect("random seed");
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Wall-clock start of the case in progress (ms since the epoch; 0 when none) and its input.
struct Watch {
    start_ms: AtomicU64,
    input: Mutex<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One watchdog per property (they run on parallel test threads).
fn watchdog(name: &'static str) -> &'static Watch {
    static ALL: OnceLock<Mutex<BTreeMap<&'static str, &'static Watch>>> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().unwrap();
    all.entry(name).or_insert_with(|| {
        let w: &'static Watch =
            Box::leak(Box::new(Watch { start_ms: AtomicU64::new(0), input: Mutex::new(String::new()) }));
        let limit: u64 = std::env::var("FUZZ_HANG_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = w.start_ms.load(Ordering::Relaxed);
            if s != 0 && now_ms().saturating_sub(s) > limit * 1000 {
                let input = w.input.lock().map(|i| i.clone()).unwrap_or_default();
                let shown: String = input.chars().take(8192).flat_map(char::escape_debug).collect();
                eprintln!("FUZZ HANG in {name}: one case ran for more than {limit} s; its input:\n{shown}");
                std::process::abort();
            }
        });
        w
    })
}

/// CPU time used by this thread.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub fn cpu_budget() -> Duration {
    Duration::from_millis(std::env::var("FUZZ_CASE_CPU_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000))
}

#[derive(Default)]
pub struct Stats {
    cases: u64,
    counts: BTreeMap<&'static str, u64>,
    slowest: Duration,
}

impl Stats {
    pub fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// Runs `cases` cases of `strategy` through `test`, with shrinking, and prints a summary.
pub fn fuzz<S, F>(name: &'static str, cases: u64, strategy: S, test: F)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(&S::Value, &mut Stats) -> Result<(), TestCaseError>,
{
    let seed = seed();
    let config = Config {
        cases: cases.min(u64::from(u32::MAX)) as u32,
        failure_persistence: None,
        max_shrink_iters: 4096,
        // Generated values are filtered rarely; do not give up on a long run.
        max_global_rejects: u32::MAX,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let watch = watchdog(name);
    let stats = Mutex::new(Stats::default());
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        *watch.input.lock().unwrap() = format!("{v:?}");
        watch.start_ms.store(now_ms(), Ordering::Relaxed);
        let mut st = stats.lock().unwrap();
        let t = Instant::now();
        let r = test(&v, &mut st);
        st.cases += 1;
        st.slowest = st.slowest.max(t.elapsed());
        watch.start_ms.store(0, Ordering::Relaxed);
        r
    });
    let st = stats.into_inner().unwrap();
    let took = started.elapsed();
    eprintln!(
        "fuzz {name}: {} cases ({} shrinking steps included) in {:.1} s ({:.0} cases/s), slowest case {:.1} ms, seed {}",
        st.cases,
        st.cases.saturating_sub(cases),
        took.as_secs_f64(),
        st.cases as f64 / took.as_secs_f64().max(1e-9),
        st.slowest.as_secs_f64() * 1000.0,
        hex(&seed)
    );
    eprintln!("fuzz {name}: outcomes {:?}", st.counts);
    if let Err(e) = result {
        panic!("fuzz {name} found a violation (replay with FUZZ_SEED={}): {e}", hex(&seed));
    }
}
