//! The state file of nightly runs (`--state FILE`): when each finding was first and last seen, so
//! reports show orphan age, what is new since the last run, and what was resolved (listed once).
//!
//! Format (`"version": 1`, JSON, written atomically): one entry per finding key (rule, lowercased
//! resource) with `first_seen`, `last_seen` and the severity it last had. Unknown versions are
//! refused, never overwritten: the file is the only record of how old an orphan is.
//!
//! Overlap safety: a run takes `<FILE>.lock` (created with `O_EXCL`, so exactly one run holds it)
//! only around read → merge → write, after the slow collection. The merge itself is monotonic
//! (`first_seen` = earliest, `last_seen` = latest, and nothing a newer run saw is resolved by an
//! older one), so two runs that overlap in any order leave the same file. A lock older than
//! [`STALE_LOCK_AFTER`] is left by a crashed run and is broken with a warning.
//!
//! The clock is the report's `generated_at` (which `--now` overrides), never the wall clock, so
//! every age is reproducible. This module must not decide severities other than the one
//! `--min-age` rule, and must never resolve an entry whose scope this run could not see.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::findings::{self, Severity};
use crate::inventory::GapScope;
use crate::report::{AuditResult, History, Resolved, Seen};

/// The state file format this azaudit reads and writes.
pub const VERSION: u32 = 1;
/// A lock file older than this was left by a run that died (a merge takes well under a second).
pub const STALE_LOCK_AFTER: Duration = Duration::from_secs(3600);
/// How long a run waits for another run's merge before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
const LOCK_POLL: Duration = Duration::from_millis(200);
/// Entries that no run has seen for this many days, and that could never be resolved (their
/// subscription or cluster is no longer audited, or always has a gap), are dropped so the file
/// does not grow forever.
pub const EXPIRE_AFTER_DAYS: i64 = 90;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "create the state lock {path}: {source}. Check that the directory exists and is writable by this user"
    )]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state lock {path} is held by another azaudit run ({holder}); waited {waited_s} s. If no other run is active, delete {path}"
    )]
    Busy {
        path: PathBuf,
        holder: String,
        waited_s: u64,
    },
    #[error("read the state file {path}: {source}. Check its permissions, or pass another --state FILE")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state file {path} is not valid azaudit state: {detail}. It was not overwritten: repair it, or move it away to start a new history"
    )]
    Parse { path: PathBuf, detail: String },
    #[error(
        "the state file {path} has version {found}; this azaudit reads version {VERSION}. Use the azaudit that wrote it (or a newer one), or move the file away to start a new history"
    )]
    Version { path: PathBuf, found: String },
    #[error("the report time {0:?} is not RFC 3339; pass --now as e.g. 2026-11-27T03:00:00Z")]
    Clock(String),
    #[error(
        "write the state file {path}: {source}. Check that its directory is writable; the report was written, this run's history was not"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The newest run merged into the file.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The newest run whose audit was complete.
    #[serde(default)]
    pub last_complete_run: Option<String>,
    /// Sorted by rule, then lowercased resource.
    #[serde(default)]
    pub findings: Vec<Entry>,
}

/// One finding's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub rule: String,
    /// As last reported (the key lowercases it).
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The rule's severity when last seen (before `--min-age`).
    pub severity: Severity,
    pub first_seen: String,
    pub last_seen: String,
}

impl Entry {
    fn key(&self) -> (String, String) {
        (self.rule.clone(), self.resource.to_ascii_lowercase())
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Parses `--min-age`: a number and a unit (`s`, `m`, `h`, `d`, `w`), e.g. `7d`, `36h`, `0d`.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not an age: use a number and a unit, e.g. 7d, 36h, 2w"))?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" if n == 0 => 0,
        _ => return Err(format!("{s:?}: unknown unit; use s, m, h, d or w, e.g. 7d")),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Shows an age the way `--min-age` takes it (`7d`, `36h`; weeks as days, as people say "7d").
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= n && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// `<FILE>.lock`.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    state.with_file_name(name)
}

/// The exclusive lock beside a state file; removed on drop (only if it is still ours).
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    token: String,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // A run that outlived STALE_LOCK_AFTER may have had its lock broken and retaken by another
        // run: never delete a lock that is not ours.
        if fs::read_to_string(&self.path).is_ok_and(|t| t == self.token) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn lock_age(path: &Path) -> std::io::Result<Duration> {
    let mtime = fs::metadata(path)?.modified()?;
    Ok(SystemTime::now().duration_since(mtime).unwrap_or_default())
}

/// Takes `<state>.lock`, waiting up to `wait` for another run, breaking a lock older than
/// `stale_after`. Lock ages use the real clock (they are about processes, not reports).
pub fn lock(state: &Path, wait: Duration, stale_after: Duration) -> Result<StateLock, StateError> {
    let path = lock_path(state);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| StateError::Lock {
            path: path.clone(),
            source,
        })?;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let token = format!(
        "azaudit pid {} since unix {} ({})\n",
        std::process::id(),
        now.as_secs(),
        now.subsec_nanos()
    );
    let started = Instant::now();
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(token.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|source| StateError::Lock {
                        path: path.clone(),
                        source,
                    })?;
                return Ok(StateLock { path, token });
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => return Err(StateError::Lock { path, source }),
        }
        let holder = fs::read_to_string(&path).unwrap_or_default();
        match lock_age(&path) {
            Ok(age) if age > stale_after => {
                tracing::warn!(
                    lock = %path.display(),
                    holder = %holder.trim(),
                    age_s = age.as_secs(),
                    "breaking a stale state lock: the run that took it did not release it"
                );
                if break_stale(&path, &holder) {
                    continue;
                }
                // Could not move it (permissions?): wait like for a live lock, then say so.
            }
            Ok(_) => {}
            // Released between our attempt and now: try again at once.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(source) => return Err(StateError::Lock { path, source }),
        }
        if started.elapsed() >= wait {
            return Err(StateError::Busy {
                path,
                holder: holder.trim().to_string(),
                waited_s: started.elapsed().as_secs(),
            });
        }
        std::thread::sleep(LOCK_POLL);
    }
}

/// Removes a stale lock without removing a fresh one that replaced it a moment ago: move it aside
/// (atomic), check that what we moved is what we judged stale, and put it back (without
/// clobbering) if it is not.
/// Returns whether the lock is gone (so taking it can be retried at once).
fn break_stale(path: &Path, stale_content: &str) -> bool {
    let aside = path.with_file_name(format!(
        "{}.stale.{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        // Someone else broke or released it first.
        Err(e) if e.kind() == ErrorKind::NotFound => return true,
        Err(_) => return false,
    }
    if fs::read_to_string(&aside).unwrap_or_default() != stale_content {
        let _ = fs::hard_link(&aside, path);
    }
    let _ = fs::remove_file(&aside);
    true
}

/// Reads a state file; a missing file is an empty history (the first run).
pub fn load(path: &Path) -> Result<State, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(State {
                version: VERSION,
                ..Default::default()
            });
        }
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let parse_err = |detail: String| StateError::Parse {
        path: path.to_path_buf(),
        detail,
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| parse_err(e.to_string()))?;
    match v.get("version") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
        Some(other) => {
            return Err(StateError::Version {
                path: path.to_path_buf(),
                found: other.to_string(),
            });
        }
        None => return Err(parse_err("no \"version\" field".into())),
    }
    let state: State = serde_json::from_value(v).map_err(|e| parse_err(e.to_string()))?;
    for e in &state.findings {
        for (what, t) in [("first_seen", &e.first_seen), ("last_seen", &e.last_seen)] {
            if parse_time(t).is_none() {
                return Err(parse_err(format!(
                    "{what} {t:?} of {} {} is not RFC 3339",
                    e.rule, e.resource
                )));
            }
        }
    }
    Ok(state)
}

/// Writes a state file atomically (temporary file in the same directory, then rename).
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    azaudit_world::write_json_atomic(path, state).map_err(|source| StateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The subscription an entry belongs to: its own field, else the one its ARM id names.
fn entry_subscription(e: &Entry) -> Option<String> {
    e.subscription
        .clone()
        .or_else(|| azaudit_world::ResourceId::parse(&e.resource).and_then(|id| id.subscription))
}

/// Whether this run saw everything that could have produced the entry, so that not finding it
/// means it is gone:
/// - its rule ran;
/// - no Kubernetes gap in any cluster and no gap of unknown scope: rules correlate Services
///   across clusters (a PIP is "requested" if any cluster's Service asks for it), so a gap in one
///   cluster can hide a finding in another;
/// - its subscription (or, without one, every subscription) was audited without an ARM gap;
/// - its cluster, if any, was audited.
fn resolvable(e: &Entry, r: &AuditResult) -> bool {
    if !r.rules.iter().any(|id| *id == e.rule) {
        return false;
    }
    let sub = entry_subscription(e);
    for g in &r.gaps {
        match &g.scope {
            GapScope::Kubernetes { .. } | GapScope::Other { .. } => return false,
            GapScope::Arm { subscription, .. } => {
                if sub.as_ref().is_none_or(|s| s.eq_ignore_ascii_case(subscription)) {
                    return false;
                }
            }
        }
    }
    if let Some(s) = &sub
        && !r.subscriptions.iter().any(|x| x.eq_ignore_ascii_case(s))
    {
        return false;
    }
    if let Some(c) = &e.cluster
        && !r.clusters.iter().any(|x| x == c)
    {
        return false;
    }
    true
}

fn whole_days(d: time::Duration) -> u64 {
    u64::try_from(d.whole_days()).unwrap_or(0)
}

fn min_str(a: String, b: &str) -> String {
    match (parse_time(&a), parse_time(b)) {
        (Some(x), Some(y)) if y < x => b.to_string(),
        _ => a,
    }
}

fn max_opt(a: Option<String>, b: &str) -> Option<String> {
    match a.as_deref().and_then(parse_time) {
        Some(x) if parse_time(b).is_none_or(|y| y <= x) => a,
        _ => Some(b.to_string()),
    }
}

/// Merges this run into the state: fills each finding's history (and `Finding::first_seen`),
/// applies `--min-age`, lists resolved entries in `r.history` and returns the state to write.
/// Pure: the caller holds the lock and does the I/O.
pub fn merge(
    prev: State,
    r: &mut AuditResult,
    min_age: Option<Duration>,
    path: &str,
) -> Result<State, StateError> {
    let now_s = r.generated_at.clone();
    let now = parse_time(&now_s).ok_or_else(|| StateError::Clock(now_s.clone()))?;
    let mut entries: BTreeMap<(String, String), Entry> =
        prev.findings.into_iter().map(|e| (e.key(), e)).collect();
    let mut seen = BTreeMap::new();
    let mut this_run = std::collections::BTreeSet::new();
    for f in &mut r.findings {
        let key = f.key();
        let (first_seen, last_seen, severity, new) = match entries.get(&key) {
            Some(e) => {
                // A newer run already merged (overlapping runs finished out of order): keep its
                // severity, take the earliest first sighting.
                let newer = parse_time(&e.last_seen).is_some_and(|t| t > now);
                (
                    min_str(e.first_seen.clone(), &now_s),
                    if newer { e.last_seen.clone() } else { now_s.clone() },
                    if newer { e.severity } else { f.severity },
                    false,
                )
            }
            None => (now_s.clone(), now_s.clone(), f.severity, true),
        };
        let age = parse_time(&first_seen).map_or(time::Duration::ZERO, |t| now - t);
        let young = min_age.is_some_and(|m| age < time::Duration::try_from(m).unwrap_or(time::Duration::MAX));
        let mut downgraded_from = None;
        if young && f.cleanup_eligible {
            // Too young to act on: informational, and out of every cleanup plan.
            if f.severity != Severity::Info {
                downgraded_from = Some(f.severity);
            }
            f.severity = Severity::Info;
            f.cleanup_eligible = false;
        }
        f.first_seen = Some(first_seen.clone());
        seen.insert(
            key.clone(),
            Seen {
                first_seen: first_seen.clone(),
                age_days: whole_days(age),
                new_since_last_run: new,
                downgraded_from,
            },
        );
        entries.insert(
            key.clone(),
            Entry {
                rule: f.rule.to_string(),
                resource: f.resource.clone(),
                cluster: f.cluster.clone(),
                subscription: f.subscription.clone(),
                severity,
                first_seen,
                last_seen,
            },
        );
        this_run.insert(key);
    }
    findings::sort(&mut r.findings);

    let mut resolved = Vec::new();
    let mut held = 0;
    let mut expired = 0;
    entries.retain(|key, e| {
        if this_run.contains(key) {
            return true;
        }
        let last = parse_time(&e.last_seen);
        // Seen by a run newer than this one: this run cannot know it is gone.
        let seen_later = last.is_none_or(|t| t >= now);
        if !seen_later && resolvable(e, r) {
            resolved.push(Resolved {
                rule: e.rule.clone(),
                resource: e.resource.clone(),
                cluster: e.cluster.clone(),
                subscription: e.subscription.clone(),
                severity: e.severity,
                first_seen: e.first_seen.clone(),
                last_seen: e.last_seen.clone(),
            });
            return false;
        }
        if last.is_some_and(|t| (now - t).whole_days() > EXPIRE_AFTER_DAYS) {
            expired += 1;
            return false;
        }
        held += 1;
        true
    });
    if expired > 0 {
        tracing::warn!(
            state = path,
            "dropped {expired} state entr(y/ies) unseen for more than {EXPIRE_AFTER_DAYS} days whose scope was never audited completely since"
        );
    }
    resolved.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| {
                a.resource
                    .to_ascii_lowercase()
                    .cmp(&b.resource.to_ascii_lowercase())
            })
    });
    let last_complete_run = if r.complete() {
        max_opt(prev.last_complete_run, &now_s)
    } else {
        prev.last_complete_run
    };
    r.history = Some(History {
        path: path.to_string(),
        previous_run: prev.updated_at.clone(),
        last_complete_run: last_complete_run.clone(),
        min_age: min_age.map(format_age),
        seen,
        resolved,
        held,
    });
    Ok(State {
        version: VERSION,
        updated_at: max_opt(prev.updated_at, &now_s),
        last_complete_run,
        findings: entries.into_values().collect(),
    })
}

/// A state merge in progress: the lock is held until [`Session::commit`] (or drop).
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    next: State,
    _lock: StateLock,
}

impl Session {
    /// Locks, reads and merges; the caller renders the report, then commits. If the report
    /// cannot be written the state is left as it was, so resolved findings are not lost unseen.
    pub fn begin(path: &Path, r: &mut AuditResult, min_age: Option<Duration>) -> Result<Session, StateError> {
        let lock = lock(path, LOCK_WAIT, STALE_LOCK_AFTER)?;
        let prev = load(path)?;
        let next = merge(prev, r, min_age, &path.display().to_string())?;
        Ok(Session {
            path: path.to_path_buf(),
            next,
            _lock: lock,
        })
    }

    /// Writes the merged state and releases the lock.
    pub fn commit(self) -> Result<(), StateError> {
        save(&self.path, &self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Finding;
    use crate::inventory::{ArmKind, Gap, K8sKind};
    use crate::report::{CallStats, Source};

    const SUB: &str = "00000000-0000-0000-0000-000000000001";
    const SUB2: &str = "00000000-0000-0000-0000-000000000002";

    fn pip(name: &str) -> String {
        format!(
            "/subscriptions/{SUB}/resourceGroups/mc_rg/providers/Microsoft.Network/publicIPAddresses/{name}"
        )
    }

    fn orphan(name: &str) -> Finding {
        Finding::new(
            "orphaned-public-ip",
            Severity::High,
            pip(name),
            format!("{name} is orphaned"),
        )
        .cluster("c1")
        .subscription(SUB)
        .cleanup(true)
    }

    fn node(name: &str) -> Finding {
        Finding::new(
            "node-not-registered-with-cloud",
            Severity::High,
            format!("k8s://c1/nodes/{name}"),
            "no providerID",
        )
        .cluster("c1")
    }

    fn run(now: &str, findings: Vec<Finding>) -> AuditResult {
        AuditResult {
            generated_at: now.into(),
            source: Source::Live,
            subscriptions: vec![SUB.into(), SUB2.into()],
            clusters: vec!["c1".into()],
            gaps: vec![],
            findings,
            stats: CallStats::default(),
            duration_ms: 1,
            rules: vec!["orphaned-public-ip", "node-not-registered-with-cloud"],
            history: None,
            suppressed: Vec::new(),
        }
    }

    fn empty() -> State {
        State {
            version: VERSION,
            ..Default::default()
        }
    }

    #[test]
    fn first_and_last_seen_age_new_and_resolved_once() {
        let mut r1 = run("2026-11-01T03:00:00Z", vec![orphan("a"), orphan("b")]);
        let s1 = merge(empty(), &mut r1, None, "s.json").unwrap();
        let h1 = r1.history.as_ref().unwrap();
        assert_eq!(h1.previous_run, None);
        assert!(h1.seen.values().all(|s| s.new_since_last_run && s.age_days == 0));
        assert_eq!(r1.findings[0].first_seen.as_deref(), Some("2026-11-01T03:00:00Z"));

        // Ten and a half days later: a is still there, b is gone, c is new.
        let mut r2 = run("2026-11-11T15:00:00Z", vec![orphan("A"), orphan("c")]);
        let s2 = merge(s1, &mut r2, None, "s.json").unwrap();
        let h2 = r2.history.as_ref().unwrap();
        assert_eq!(h2.previous_run.as_deref(), Some("2026-11-01T03:00:00Z"));
        let a = r2.seen(&r2.findings[0]).unwrap();
        assert_eq!(r2.findings[0].resource, pip("A"));
        assert_eq!(
            (a.age_days, a.new_since_last_run),
            (10, false),
            "same key, other case"
        );
        assert_eq!(a.first_seen, "2026-11-01T03:00:00Z");
        assert!(r2.seen(&r2.findings[1]).unwrap().new_since_last_run);
        assert_eq!(h2.resolved.len(), 1);
        assert_eq!(h2.resolved[0].resource, pip("b"));
        assert_eq!(h2.resolved[0].last_seen, "2026-11-01T03:00:00Z");
        assert_eq!(s2.findings.len(), 2);
        assert_eq!(s2.findings[0].resource, pip("A"), "the latest casing is kept");
        assert_eq!(s2.findings[0].last_seen, "2026-11-11T15:00:00Z");

        // Listed once: the next run does not list b again.
        let mut r3 = run("2026-11-12T03:00:00Z", vec![orphan("a"), orphan("c")]);
        merge(s2, &mut r3, None, "s.json").unwrap();
        assert!(r3.history.unwrap().resolved.is_empty());
    }

    #[test]
    fn min_age_downgrades_young_cleanup_eligible_findings_only() {
        let mut r1 = run("2026-11-01T03:00:00Z", vec![orphan("old")]);
        let s1 = merge(empty(), &mut r1, Some(Duration::from_secs(7 * 86_400)), "s").unwrap();
        assert_eq!(r1.findings[0].severity, Severity::Info, "first sighting is young");
        assert!(!r1.findings[0].cleanup_eligible);
        assert_eq!(
            r1.seen(&r1.findings[0]).unwrap().downgraded_from,
            Some(Severity::High)
        );
        assert_eq!(
            s1.findings[0].severity,
            Severity::High,
            "the state keeps the rule's severity"
        );

        let mut r2 = run(
            "2026-11-08T03:00:00Z",
            vec![orphan("old"), orphan("young"), node("n1")],
        );
        merge(s1, &mut r2, Some(Duration::from_secs(7 * 86_400)), "s").unwrap();
        let by_res = |res: &str| r2.findings.iter().find(|f| f.resource == res).unwrap();
        assert_eq!(
            by_res(&pip("old")).severity,
            Severity::High,
            "exactly 7 days is old enough"
        );
        assert!(by_res(&pip("old")).cleanup_eligible);
        assert_eq!(by_res(&pip("young")).severity, Severity::Info);
        assert_eq!(
            by_res("k8s://c1/nodes/n1").severity,
            Severity::High,
            "not cleanup-eligible: min-age does not apply"
        );
        assert_eq!(
            r2.findings.last().unwrap().resource,
            pip("young"),
            "re-sorted after downgrades: info last"
        );
    }

    #[test]
    fn gaps_hold_entries_in_their_scope_only() {
        let other_sub = format!(
            "/subscriptions/{SUB2}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/x"
        );
        let mut f2 =
            Finding::new("orphaned-public-ip", Severity::High, other_sub.clone(), "x").subscription(SUB2);
        f2.cluster = None;
        let mut r1 = run("2026-11-01T03:00:00Z", vec![orphan("a"), f2, node("n1")]);
        let s1 = merge(empty(), &mut r1, None, "s").unwrap();

        // An ARM gap in SUB: a (in SUB) and n1 (no subscription) are held, x (SUB2) resolves.
        let mut r2 = run("2026-11-02T03:00:00Z", vec![]);
        r2.gaps.push(Gap {
            scope: GapScope::Arm {
                subscription: SUB.into(),
                kind: ArmKind::PublicIpAddresses,
                detail: None,
            },
            cause: "429".into(),
        });
        let s2 = merge(s1.clone(), &mut r2, None, "s").unwrap();
        let h2 = r2.history.unwrap();
        assert_eq!(
            h2.resolved
                .iter()
                .map(|r| r.resource.as_str())
                .collect::<Vec<_>>(),
            vec![other_sub.as_str()]
        );
        assert_eq!(h2.held, 2);
        assert_eq!(s2.findings.len(), 2);
        assert_eq!(s2.findings[0].last_seen, "2026-11-01T03:00:00Z", "held, not seen");

        // A Kubernetes gap anywhere holds everything.
        let mut r3 = run("2026-11-02T03:00:00Z", vec![]);
        r3.gaps.push(Gap {
            scope: GapScope::Kubernetes {
                cluster: "other".into(),
                kind: K8sKind::Services,
            },
            cause: "403".into(),
        });
        merge(s1.clone(), &mut r3, None, "s").unwrap();
        assert!(r3.history.as_ref().unwrap().resolved.is_empty());
        assert_eq!(r3.history.unwrap().held, 3);

        // A rule that did not run, a cluster or subscription not audited: held.
        let mut r4 = run("2026-11-02T03:00:00Z", vec![]);
        r4.rules = vec!["orphaned-public-ip"];
        r4.subscriptions = vec![SUB2.into()];
        merge(s1, &mut r4, None, "s").unwrap();
        let h4 = r4.history.unwrap();
        assert_eq!(h4.resolved.len(), 1, "only x: its subscription was audited");
        assert_eq!(h4.held, 2);
    }

    #[test]
    fn overlapping_runs_merge_in_any_order() {
        // Run A started at 03:00 and finished after run B (04:00) had merged.
        let mut b = run("2026-11-02T04:00:00Z", vec![orphan("a"), orphan("b")]);
        let s_b = merge(empty(), &mut b, None, "s").unwrap();
        let mut a = run("2026-11-02T03:00:00Z", vec![orphan("a")]);
        let s_ab = merge(s_b, &mut a, None, "s").unwrap();
        assert!(
            a.history.as_ref().unwrap().resolved.is_empty(),
            "b was seen by a newer run: the older run must not resolve it"
        );
        let ea = &s_ab.findings[0];
        assert_eq!(
            (ea.first_seen.as_str(), ea.last_seen.as_str()),
            ("2026-11-02T03:00:00Z", "2026-11-02T04:00:00Z")
        );
        assert_eq!(s_ab.updated_at.as_deref(), Some("2026-11-02T04:00:00Z"));

        // The other order gives the same file.
        let mut a2 = run("2026-11-02T03:00:00Z", vec![orphan("a")]);
        let s_a = merge(empty(), &mut a2, None, "s").unwrap();
        let mut b2 = run("2026-11-02T04:00:00Z", vec![orphan("a"), orphan("b")]);
        let s_ba = merge(s_a, &mut b2, None, "s").unwrap();
        assert_eq!(s_ab, s_ba);
    }

    #[test]
    fn last_complete_run_survives_incomplete_runs_and_entries_expire() {
        let mut r1 = run("2026-08-01T03:00:00Z", vec![orphan("a")]);
        let s1 = merge(empty(), &mut r1, None, "s").unwrap();
        assert_eq!(s1.last_complete_run.as_deref(), Some("2026-08-01T03:00:00Z"));
        let mut r2 = run("2026-11-30T03:00:00Z", vec![]);
        r2.gaps.push(Gap {
            scope: GapScope::Other { what: "x".into() },
            cause: "y".into(),
        });
        let s2 = merge(s1, &mut r2, None, "s").unwrap();
        assert_eq!(s2.last_complete_run.as_deref(), Some("2026-08-01T03:00:00Z"));
        assert_eq!(
            r2.history.as_ref().unwrap().last_complete_run.as_deref(),
            Some("2026-08-01T03:00:00Z")
        );
        assert!(
            s2.findings.is_empty(),
            "unseen for 121 days: expired, not resolved"
        );
        assert!(r2.history.unwrap().resolved.is_empty());
    }

    #[test]
    fn ages_parse_and_print() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_age("36h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert!(parse_age("7").unwrap_err().contains("unit"));
        assert!(parse_age("d").unwrap_err().contains("e.g. 7d"));
        assert!(parse_age("7y").is_err());
        assert_eq!(format_age(Duration::from_secs(604_800)), "7d");
        assert_eq!(format_age(Duration::from_secs(3 * 86_400)), "3d");
        assert_eq!(format_age(Duration::from_secs(129_600)), "36h");
    }

    #[test]
    fn load_refuses_unknown_versions_and_garbage_and_accepts_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(load(&p).unwrap(), empty(), "missing file: empty history");
        fs::write(&p, r#"{"version": 2, "findings": []}"#).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("version 2") && e.contains("reads version 1") && e.contains("move the file away"),
            "{e}"
        );
        fs::write(&p, "{not json").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("not valid azaudit state") && e.contains("not overwritten"),
            "{e}"
        );
        fs::write(&p, r#"{"findings": []}"#).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("no \"version\""));
        fs::write(
            &p,
            r#"{"version":1,"findings":[{"rule":"r","resource":"x","severity":"high","first_seen":"yesterday","last_seen":"2026-11-01T00:00:00Z"}]}"#,
        )
        .unwrap();
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("first_seen \"yesterday\"")
        );
        // Round trip, and unknown fields of a newer minor writer are tolerated.
        let mut r = run("2026-11-01T03:00:00Z", vec![orphan("a")]);
        let s = merge(empty(), &mut r, None, "s").unwrap();
        save(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), s);
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        v["comment"] = "added by hand".into();
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(load(&p).unwrap(), s);
    }

    #[test]
    fn lock_is_exclusive_released_on_drop_and_stale_locks_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let l1 = lock(&state, Duration::ZERO, STALE_LOCK_AFTER).unwrap();
        assert!(lock_path(&state).exists());
        let e = lock(&state, Duration::ZERO, STALE_LOCK_AFTER)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("held by another azaudit run") && e.contains("delete"),
            "{e}"
        );
        assert!(
            e.contains(&format!("pid {}", std::process::id())),
            "names the holder: {e}"
        );
        drop(l1);
        assert!(!lock_path(&state).exists());

        // A lock left by a crashed run two hours ago.
        fs::write(lock_path(&state), "azaudit pid 1 since unix 0 (0)\n").unwrap();
        let f = fs::File::options().write(true).open(lock_path(&state)).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        drop(f);
        let l2 = lock(&state, Duration::ZERO, STALE_LOCK_AFTER).unwrap();
        assert!(
            fs::read_to_string(lock_path(&state))
                .unwrap()
                .contains(&std::process::id().to_string())
        );
        // A lock we no longer own (broken and retaken by another run) is not deleted on drop.
        fs::write(lock_path(&state), "someone else").unwrap();
        drop(l2);
        assert_eq!(fs::read_to_string(lock_path(&state)).unwrap(), "someone else");
    }

    #[test]
    fn concurrent_sessions_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let state = state.clone();
                std::thread::spawn(move || {
                    let mut r = run(
                        &format!("2026-11-0{}T03:00:00Z", i + 1),
                        vec![orphan(&format!("p{i}"))],
                    );
                    // Each run sees only its own orphan and the others' are held (their rule
                    // did not run), so every update must survive.
                    r.rules = vec![];
                    let s = Session::begin(&state, &mut r, None).unwrap();
                    s.commit().unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = load(&state).unwrap();
        assert_eq!(s.findings.len(), 6, "{s:#?}");
        assert_eq!(s.updated_at.as_deref(), Some("2026-11-06T03:00:00Z"));
        assert!(!lock_path(&state).exists());
    }
}
