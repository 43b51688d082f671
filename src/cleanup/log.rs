//! The apply log: append-only JSON lines, one `fsync` per line, so that a run killed at any point
//! leaves a record of everything it started and finished.
//!
//! Lines (`event`): `run-started`, then per action `started` (written *before* the write, with
//! the method, the id written and the `If-Match` sent) and one of `done` (with the ETag after),
//! `skipped` (with the reason) or `failed` (with the error), then `run-finished`. A line cut short
//! by a crash is ignored when the log is read back, and the next line starts on a line of its
//! own. Entries name the plan (`plan_id`), so one log file can be shared by several plans.
//!
//! Must not hold secrets: ids, ETags, reasons and error messages only (ArmError messages carry no
//! token or header).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    RunStarted,
    Started,
    Done,
    Skipped,
    Failed,
    RunFinished,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Entry {
    /// Wall-clock time (RFC 3339, UTC).
    pub ts: String,
    pub plan_id: String,
    /// One id per `azaudit cleanup apply` run.
    pub run: String,
    pub event: Option<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `started`: `PUT` or `DELETE`, and the id written (the parent for sub-resource edits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    /// `done`: the written resource's ETag afterwards (none after a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag_after: Option<String>,
    /// `done` / `skipped`: why, in words (e.g. "already gone").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `failed`: the error, and its kind (`locked`, `in-use`, `precondition-failed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// `run-finished`: counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "open the apply log {path}: {source}. Check that its directory exists and is writable, or pass --log FILE"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "write the apply log {path}: {source}. The apply stopped before its next write, so the log still tells everything that was done; free space or fix permissions, then run the apply again"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The log file, open for appending.
#[derive(Debug)]
pub struct ApplyLog {
    path: PathBuf,
    file: File,
}

/// RFC 3339 now (UTC, whole seconds).
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parses log text; lines that are not entries (a line cut by a crash) are skipped.
pub fn parse(text: &str) -> (Vec<Entry>, usize) {
    let mut out = Vec::new();
    let mut broken = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Entry>(line) {
            Ok(e) if e.event.is_some() => out.push(e),
            _ => broken += 1,
        }
    }
    (out, broken)
}

/// Reads a log without opening it for writing (`None` when it does not exist).
pub fn read(path: &Path) -> Result<Option<Vec<Entry>>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(parse(&t).0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl ApplyLog {
    /// Opens (creating) the log for appending and returns what it already holds.
    pub fn open(path: &Path) -> Result<(ApplyLog, Vec<Entry>), LogError> {
        let err = |source| LogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(err)?;
        let (entries, broken) = parse(&text);
        if broken > 0 {
            tracing::warn!(log = %path.display(), "{broken} line(s) of the apply log are not entries (a run was cut off while writing); they are ignored");
        }
        let mut log = ApplyLog {
            path: path.to_path_buf(),
            file,
        };
        // A line cut off by a crash must not swallow the next entry.
        if !text.is_empty() && !text.ends_with('\n') {
            log.file.seek(SeekFrom::End(0)).map_err(err)?;
            log.write_raw(b"\n")?;
        }
        Ok((log, entries))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        let err = |source| LogError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(bytes).map_err(err)?;
        // Durable before anything else happens: the line must survive a crash right after.
        self.file.sync_data().map_err(err)
    }

    /// Appends one entry (stamped now) and syncs it to disk.
    pub fn append(&mut self, mut e: Entry) -> Result<(), LogError> {
        if e.ts.is_empty() {
            e.ts = now();
        }
        let mut line = serde_json::to_vec(&e).map_err(|e| LogError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.write_raw(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("apply.log");
        let (mut log, prior) = ApplyLog::open(&p).unwrap();
        assert!(prior.is_empty());
        log.append(Entry {
            plan_id: "p".into(),
            run: "r1".into(),
            event: Some(Event::Started),
            action: Some("a".into()),
            ..Default::default()
        })
        .unwrap();
        drop(log);
        // A crash in the middle of the next line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"ts":"x","plan_id":"p","run":"r1","event":"do"#)
            .unwrap();
        drop(f);
        let (mut log, prior) = ApplyLog::open(&p).unwrap();
        assert_eq!(prior.len(), 1);
        log.append(Entry {
            plan_id: "p".into(),
            run: "r2".into(),
            event: Some(Event::Done),
            action: Some("a".into()),
            ..Default::default()
        })
        .unwrap();
        let entries = read(&p).unwrap().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].event, Some(Event::Done));
        assert!(!entries[1].ts.is_empty());
    }
}
