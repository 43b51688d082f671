//! The on-disk response cache: a warm rerun within the TTL makes zero ARM requests.
//!
//! One file per response, `<dir>/<sha256(tenant \n principal \n full URL)>.json`, holding
//! `{"url", "fetched_at" (unix seconds), "status", "body"}`. The directory is 0700 and files
//! 0600 (ARM inventories name every address and resource of an estate), written atomically (a
//! private temporary file, then a rename), so a crash never leaves half an entry. An entry that
//! does not parse, or names another URL, is deleted and counted.
//!
//! Must never store a token or any request or response header: only the URL and the body.

use std::fs;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::counters::Counters;
use super::{ArmError, CacheScope};

/// `$XDG_CACHE_HOME/azaudit` (when set and absolute, as the XDG Base Directory specification
/// requires), else `~/.cache/azaudit`; `None` without a home directory.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from)
        && x.is_absolute()
    {
        return Some(x.join("azaudit"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("azaudit"))
}

#[derive(Serialize)]
struct EntryOut<'a> {
    url: &'a str,
    fetched_at: i64,
    status: u16,
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct EntryIn {
    url: String,
    fetched_at: i64,
    status: u16,
    body: Box<RawValue>,
}

#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    ttl: Duration,
    scope: CacheScope,
    counters: Arc<Counters>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl DiskCache {
    /// Creates the directory (0700) or checks an existing one is private.
    pub fn open(
        dir: PathBuf,
        ttl: Duration,
        scope: CacheScope,
        counters: Arc<Counters>,
    ) -> Result<DiskCache, ArmError> {
        let err = |detail: String| ArmError::Cache {
            path: dir.display().to_string(),
            detail,
        };
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        b.mode(0o700);
        b.create(&dir)
            .map_err(|e| err(format!("cannot create it ({e})")))?;
        let meta = fs::metadata(&dir).map_err(|e| err(format!("cannot read it ({e})")))?;
        if !meta.is_dir() {
            return Err(err("it is not a directory".into()));
        }
        #[cfg(unix)]
        {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "other users can open it (mode {mode:03o}), and cached responses list every resource and address of the estate: run `chmod 700 {}`",
                    dir.display()
                )));
            }
        }
        Ok(DiskCache {
            dir,
            ttl,
            scope,
            counters,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(&self, url: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.scope.tenant.as_bytes());
        h.update(b"\n");
        h.update(self.scope.principal.as_bytes());
        h.update(b"\n");
        h.update(url.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The file of a URL's entry.
    pub fn path_for(&self, url: &str) -> PathBuf {
        self.dir.join(format!("{}.json", self.key(url)))
    }

    fn discard(&self, path: &Path, why: &str) {
        Counters::add(&self.counters.cache_discarded, 1);
        tracing::warn!(path = %path.display(), "discarding a cache entry: {why}");
        if let Err(e) = fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), "could not delete the cache entry: {e}");
        }
    }

    /// A fresh cached body for `url`, if there is one.
    pub fn read(&self, url: &str) -> Option<Box<RawValue>> {
        let path = self.path_for(url);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the cache entry: {e}");
                return None;
            }
        };
        let entry: EntryIn = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                self.discard(&path, &format!("it is not a valid entry ({e})"));
                return None;
            }
        };
        if entry.url != url {
            self.discard(&path, "it belongs to another URL");
            return None;
        }
        if !(200..300).contains(&entry.status) {
            self.discard(&path, "it holds an error answer");
            return None;
        }
        let age = unix_now() - entry.fetched_at;
        // A timestamp from the future (clock changes) is not trusted either.
        if age < 0 || age as u64 >= self.ttl.as_secs() {
            return None;
        }
        Some(entry.body)
    }

    /// Stores a successful answer. Failing to write only costs a future request: logged, not fatal.
    /// Deletes every cached response about one subscription (any principal's): after a write,
    /// cached pages of that subscription describe a world that no longer exists. Returns how many
    /// entries went.
    pub fn invalidate_subscription(&self, subscription: &str) -> usize {
        let needle = format!("/subscriptions/{}/", subscription.to_ascii_lowercase());
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let about_it = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<EntryIn>(&b).ok())
                .is_none_or(|entry| entry.url.to_ascii_lowercase().contains(&needle));
            if about_it && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    pub fn write(&self, url: &str, status: u16, body: &RawValue) {
        let entry = EntryOut {
            url,
            fetched_at: unix_now(),
            status,
            body,
        };
        let path = self.path_for(url);
        let result = serde_json::to_vec(&entry)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_private(&path, &bytes));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), "could not write the cache entry: {e}");
        }
    }
}

/// Writes `bytes` to `path` atomically, as a file only its owner can read (0600).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        // No fsync: an entry is only a cache, every read validates it (a file left empty or
        // short by a crash is discarded like any corrupt entry), and a sync per page put a disk
        // flush between a list's pages.
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    /// What the cache serves for `url`, parsed.
    fn read(c: &DiskCache, url: &str) -> Option<Value> {
        c.read(url).map(|r| serde_json::from_str(r.get()).unwrap())
    }

    fn cache(dir: &Path, ttl: u64) -> DiskCache {
        DiskCache::open(
            dir.join("c"),
            Duration::from_secs(ttl),
            CacheScope {
                tenant: "t".into(),
                principal: "p".into(),
            },
            Arc::new(Counters::default()),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_permissions_and_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 600);
        assert_eq!(fs::metadata(c.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        let url = "https://arm.example/subscriptions/s/x?api-version=1";
        assert_eq!(read(&c, url), None);
        c.write(url, 200, &raw(json!({"value": [1]})));
        assert_eq!(read(&c, url), Some(json!({"value": [1]})));
        let p = c.path_for(url);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // Another principal's key differs.
        let other = DiskCache::open(
            c.dir().to_path_buf(),
            Duration::from_secs(600),
            CacheScope {
                tenant: "t".into(),
                principal: "q".into(),
            },
            Arc::new(Counters::default()),
        )
        .unwrap();
        assert_eq!(read(&other, url), None);
        // Corrupt: discarded and counted.
        fs::write(&p, b"{\"url\": \"https://arm.exa").unwrap();
        assert_eq!(read(&c, url), None);
        assert!(!p.exists());
        assert_eq!(Counters::get(&c.counters.cache_discarded), 1);
        // An entry for another URL under this key: discarded.
        fs::write(
            &p,
            br#"{"url":"https://else","fetched_at":0,"status":200,"body":{}}"#,
        )
        .unwrap();
        assert_eq!(read(&c, url), None);
        assert_eq!(Counters::get(&c.counters.cache_discarded), 2);
        // No temporary files left behind.
        let names: Vec<String> = fs::read_dir(c.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn ttl_and_loose_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 0);
        let url = "https://arm.example/a";
        c.write(url, 200, &raw(json!({})));
        assert_eq!(read(&c, url), None, "a TTL of 0 never serves");
        let loose = tmp.path().join("loose");
        fs::create_dir(&loose).unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o755)).unwrap();
        let e = DiskCache::open(
            loose,
            Duration::from_secs(1),
            CacheScope {
                tenant: "t".into(),
                principal: "p".into(),
            },
            Arc::new(Counters::default()),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("chmod 700") && msg.contains("--no-cache"), "{msg}");
    }
}
