//! `lxcprov --json` output, typed (as ripgrep's tests/json.rs types `rg --json`).
//!
//! Every line is one envelope `{"type": TYPE, "data": DATA}` (README, "JSON output"). A
//! line that does not decode into a [`Record`] fails the test that reads it: a new or
//! renamed type, an envelope with another key, a field a test reads gone or of another
//! type. Fields no test reads are not declared (and are ignored); open-ended payloads
//! (the SBOM document, a catalog entry, a plan step's actions) stay `serde_json::Value`.

use serde::Deserialize;
use std::path::PathBuf;

/// One line of `--json` output.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", content = "data", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// `verify` and friends: a note on the report (what it was judged against), before its checks.
    Note(Note),
    Check(Check),
    Summary(Summary),
    Plan(Plan),
    Step(Step),
    Container(Container),
    Profile(Profile),
    /// A catalog entry.
    Distro(serde_json::Value),
    Xml(Xml),
    Bootstrap(Bootstrap),
    Item(Item),
    /// `audit`: an MCS level and its uses.
    Level(McsLevel),
    Problem(Problem),
    Student(Student),
    Member(Member),
    /// The CycloneDX document.
    Sbom(serde_json::Value),
    Update(Update),
    Exec(Exec),
    Completions(Completions),
    Manpage(Manpage),
    SeccompLearned(SeccompLearned),
    /// `snapshot`, `snapshots`: one snapshot of a container.
    Snapshot(Snapshot),
    /// `lab collect`: one student's archive.
    Collected(Collected),
    /// `lab snapshot`: the tag every student's snapshot has.
    LabSnapshot(LabSnapshot),
    /// `lab self-service`: what a student's request did.
    SelfService(SelfService),
    /// `lab report`: the page written.
    Report(LabReport),
    Error(ErrorData),
}

/// Every record of a `--json` run's stdout, in order. Panics, naming the line, on a line
/// that is not one [`Record`].
pub fn records(stdout: &[u8]) -> Vec<Record> {
    let text = std::str::from_utf8(stdout).unwrap_or_else(|e| panic!("--json output is not UTF-8 ({e})"));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("line {} is not a --json record ({e}):\n{l}", i + 1))
        })
        .collect()
}

macro_rules! accessors {
    ($($fn:ident => $variant:ident($ty:ty);)*) => {
        impl Record {
            $(
                /// The record's data if it is of this type.
                pub fn $fn(&self) -> Option<&$ty> {
                    match self {
                        Record::$variant(d) => Some(d),
                        _ => None,
                    }
                }
            )*
        }
    };
}

accessors! {
    as_note => Note(Note);
    as_check => Check(Check);
    as_summary => Summary(Summary);
    as_plan => Plan(Plan);
    as_step => Step(Step);
    as_container => Container(Container);
    as_profile => Profile(Profile);
    as_distro => Distro(serde_json::Value);
    as_item => Item(Item);
    as_student => Student(Student);
    as_member => Member(Member);
    as_sbom => Sbom(serde_json::Value);
    as_update => Update(Update);
    as_exec => Exec(Exec);
    as_snapshot => Snapshot(Snapshot);
    as_lab_snapshot => LabSnapshot(LabSnapshot);
    as_collected => Collected(Collected);
    as_self_service => SelfService(SelfService);
    as_report => Report(LabReport);
    as_error => Error(ErrorData);
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Note {
    pub container: String,
    pub message: String,
}

/// A check's outcome.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Check {
    pub container: String,
    pub id: String,
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<String>,
}

/// `summary`: its fields say which command wrote it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Summary {
    /// After a report's checks.
    Verify { container: String, passed: u64, failed: u64, skipped: u64 },
    /// `outdated`.
    Outdated { container: String, pending: u64, mirror: String, suite: String },
    /// `lab outdated`.
    LabOutdated { lab: String, members: u64, outdated: u64, pending: u64 },
    /// `audit`.
    Audit { levels: u64, problems: u64, selinux: bool },
}

/// `create --dry-run`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Plan {
    pub name: String,
    pub profile: String,
    pub dry_run: bool,
    pub distro: String,
    pub release: String,
    pub arch: String,
    pub installer: String,
    pub source: String,
    pub gpgcheck: bool,
    pub notes: Vec<String>,
    pub storage: String,
    pub idmap: PlanIdmap,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PlanIdmap {
    /// `none`, `profile` or `isolated`.
    pub mode: String,
    pub host_uid: Option<u64>,
    pub host_gid: Option<u64>,
    pub count: Option<u64>,
}

/// A plan step; its actions are open-ended (`{"action": KIND, ...}`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Step {
    pub n: u64,
    pub title: String,
    pub actions: Vec<serde_json::Value>,
}

/// A domain's run state in `list`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Shutoff,
    Other,
}

/// A row of `list`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Container {
    pub name: String,
    pub state: State,
    pub profile: Option<String>,
    pub label: Option<String>,
    pub label_type: Option<String>,
    pub vnet: Option<String>,
    pub init_pid: Option<u32>,
}

/// `profiles` (with `distro` and `description`) or `profiles show` (with the `profile` itself).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Profile {
    pub name: String,
    pub source: String,
    pub distro: Option<String>,
    pub description: Option<String>,
    pub profile: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Xml {
    pub name: String,
    pub xml: String,
}

/// Where a bootstrapped tree came from.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Install,
    Cache,
    Import,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Bootstrap {
    pub name: String,
    pub rootfs: PathBuf,
    pub distro: String,
    pub release: String,
    pub source: Source,
}

/// A `doctor` item's level.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ItemLevel {
    Ok,
    Warn,
    Fail,
}

/// A `doctor` item.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Item {
    pub id: String,
    pub level: ItemLevel,
    pub detail: String,
    pub fix: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct McsLevel {
    pub level: String,
    pub uses: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Problem {
    pub message: String,
}

/// `student`: a `lab up` outcome or a `lab access` row.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Student {
    Up(StudentUp),
    Access(StudentAccess),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StudentUp {
    pub name: String,
    /// `created`, `exists` or `failed`.
    pub status: String,
    pub passed: u64,
    pub failed: u64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StudentAccess {
    pub lab: String,
    pub student: String,
    pub container: String,
    pub address: String,
    pub mac: String,
    pub key_type: String,
    pub fingerprint: String,
}

/// A row of `lab status`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Member {
    pub lab: String,
    pub name: String,
    pub state: String,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub last_login: Option<u64>,
    pub last_change: Option<u64>,
}

/// A pending update (`lab outdated` names the member's container).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Update {
    pub container: Option<String>,
    pub name: String,
    pub arch: String,
    pub installed: String,
    pub candidate: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Exec {
    pub container: String,
    pub argv: Vec<String>,
    pub status: i32,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Completions {
    pub shell: String,
    pub script: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub container: String,
    pub tag: String,
    pub created: u64,
    pub base: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Collected {
    pub student: String,
    pub container: String,
    pub archive: String,
    pub sha256: String,
    pub bytes: u64,
    pub time: u64,
    pub package_changes: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabSnapshot {
    pub lab: String,
    pub tag: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabReport {
    pub lab: String,
    /// The page's absolute path.
    pub path: PathBuf,
    /// How many students (rows) it shows.
    pub students: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelfService {
    pub lab: String,
    pub student: String,
    pub container: String,
    pub verb: String,
    pub message: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Manpage {
    pub path: PathBuf,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SeccompLearned {
    pub container: String,
    pub file: PathBuf,
    pub records: u64,
    pub syscalls: u64,
}

/// The last line of a failed run.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ErrorData {
    pub message: String,
    pub chain: Vec<String>,
}
