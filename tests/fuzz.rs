//! Property-based fuzzing of lxcprov's trust boundary (issue 14), on stable Rust.
//!
//! Three properties, each a proptest run with shrinking (a failure is reported with its
//! smallest input and the seed that replays it):
//!
//! - `profiles_structured`: profiles built as YAML from generated values (hostile strings in
//!   every quoting style, YAML special tokens, anchors and aliases, deep nesting, odd
//!   numbers, unknown keys) go through parse, validation, the command-line overrides and
//!   rendering, exactly as `lxcprov render` does.
//! - `profiles_mutated`: the built-in profiles, mutated byte by byte and token by token.
//! - `tar_import`: generated tar archives (raw ustar/GNU/pax headers: `..`, absolute names,
//!   symlinks out of the tree and members written through them, hard links to outside files,
//!   device nodes, setuid files, 0777 directories, xattrs, very long names, garbage) are
//!   imported the way `lxcprov bootstrap --rootfs-from` does: the real bootstrap plan run by
//!   the real executor, `bootstrap::build` (its tar argv through the real runner,
//!   `normalise_tree`, the guest configuration, and on failure the removal of the partial
//!   tree), then the rename into place.
//!
//! What is asserted, per case:
//! - profiles: no panic; the result is `Ok` or an `Err` whose message carries no terminal
//!   control character but newlines; the rendered domain and network XML parse; their
//!   element/attribute/comment structure equals that rendered from a benign twin of the
//!   profile (every string that reaches the XML replaced by a plain word), so no hostile
//!   string ever adds or removes a node or an attribute; every capability element is one of
//!   libvirt's; each hostile string comes back out of the XML exactly as it went in (as text
//!   or an attribute value); each case takes less than `FUZZ_CASE_CPU_MS` (1000) ms of CPU.
//! - tar: no panic; nothing outside `POOL/NAME` is created, changed or removed (a snapshot
//!   of the temporary root, which holds sentinel files, directories and symlinks next to the
//!   pool and the tarball, is compared: type, mode, owner, size, mtime, link count, content,
//!   symlink target); on failure nothing is left in the pool; on success the pool holds
//!   exactly `NAME`, is `0700` root-owned, the tree's root is `0755` root-owned, the tree
//!   holds no character or block device and shares no inode with a file outside it; while it
//!   is assembled, the partial directory is never group- or other-accessible (checked after
//!   each command the executor runs, by the runner the test hands it); each case takes less
//!   than 10 s of wall time.
//!
//! A watchdog aborts the process, printing the input, when a single case runs for more than
//! `FUZZ_HANG_SECS` (30) seconds: a hang is reported instead of waited on.
//!
//! Case counts: `FUZZ_CASES` (default 2000) in total, 45% each for the two profile
//! properties and 10% for tar (whose cases fork tar). `FUZZ_SEED` (64 hex digits) replays a
//! run; each property prints its seed, count and time. `scripts/fuzz.sh N` runs N cases in
//! release mode.
//!
//! The tar property extracts with `--same-owner` and creates device nodes, so it needs
//! root. Like a missing tool, a missing root fails under CI (`CI=true` or
//! `LXCPROV_REQUIRE_TOOLS=1`, as `scripts/test.sh` sets) and skips with a message elsewhere.
//!
//! Layout: this file is the crate root; `fuzz/harness.rs` is the runner every property
//! shares (case counts, seeds, the watchdog, the CPU budget, `fuzz()`); `fuzz/hostile.rs`
//! the hostile strings; `fuzz/yaml.rs` and `fuzz/mutations.rs` the structured and mutated
//! profile generators; `fuzz/profiles.rs` the profile properties; `fuzz/tarballs.rs` the
//! archive generators; `fuzz/import.rs` the tar import property.

mod common;

// The shared runner, then one module per property's inputs and checks.
#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/hostile.rs"]
mod hostile;
#[path = "fuzz/import.rs"]
mod import;
#[path = "fuzz/mutations.rs"]
mod mutations;
#[path = "fuzz/profiles.rs"]
mod profiles;
#[path = "fuzz/tarballs.rs"]
mod tarballs;
#[path = "fuzz/yaml.rs"]
mod yaml;
