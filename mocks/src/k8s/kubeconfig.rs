//! The kubeconfig the mock writes for its clusters: one cluster, user and context per cluster.
//!
//! Written by hand as YAML: every scalar is a JSON string, which is also a valid YAML
//! double-quoted scalar (YAML 1.2 is a superset of JSON), so cluster names and tokens need no
//! further escaping rules. The file holds bearer tokens, so it is created with mode 0600 and
//! replaced atomically; it must never be written with wider permissions, not even briefly.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A YAML scalar: the JSON encoding of the string.
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The kubeconfig text. Clusters without a token get an empty one (the server then answers 401,
/// which is easier to diagnose than a missing user).
pub fn render(servers: &BTreeMap<String, String>, tokens: &BTreeMap<String, String>, ca_pem: &str) -> String {
    let ca = STANDARD.encode(ca_pem.as_bytes());
    let mut clusters = String::new();
    let mut users = String::new();
    let mut contexts = String::new();
    for (name, server) in servers {
        let token = tokens.get(name).map(String::as_str).unwrap_or("");
        clusters.push_str(&format!(
            "- name: {n}\n  cluster:\n    server: {s}\n    certificate-authority-data: {c}\n",
            n = q(name),
            s = q(server),
            c = q(&ca)
        ));
        users.push_str(&format!(
            "- name: {n}\n  user:\n    token: {t}\n",
            n = q(name),
            t = q(token)
        ));
        contexts.push_str(&format!(
            "- name: {n}\n  context:\n    cluster: {n}\n    user: {n}\n",
            n = q(name)
        ));
    }
    let empty_or = |s: String| {
        if s.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{s}")
        }
    };
    let current = servers.keys().next().map(String::as_str).unwrap_or("");
    format!(
        "apiVersion: v1\nkind: Config\npreferences: {{}}\nclusters:{}users:{}contexts:{}current-context: {}\n",
        empty_or(clusters),
        empty_or(users),
        empty_or(contexts),
        q(current)
    )
}

/// Writes `text` to `path` with mode 0600: a temporary file created 0600 in the same directory,
/// then a rename over the target.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kubeconfig".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_entry_per_cluster_and_quotes() {
        let servers = BTreeMap::from([
            ("b".to_string(), "https://127.0.0.1:2".to_string()),
            ("a\"x".to_string(), "https://127.0.0.1:1".to_string()),
        ]);
        let tokens = BTreeMap::from([("b".to_string(), "tb".to_string())]);
        let y = render(&servers, &tokens, "PEM");
        assert!(y.contains("- name: \"a\\\"x\"\n  cluster:\n    server: \"https://127.0.0.1:1\""));
        assert!(y.contains("certificate-authority-data: \"UEVN\""));
        assert!(y.contains("- name: \"b\"\n  user:\n    token: \"tb\"\n"));
        assert!(y.contains("- name: \"a\\\"x\"\n  user:\n    token: \"\"\n"));
        assert!(y.ends_with("current-context: \"a\\\"x\"\n"));
        let empty = render(&BTreeMap::new(), &BTreeMap::new(), "PEM");
        assert!(empty.contains("clusters: []\nusers: []\ncontexts: []\ncurrent-context: \"\"\n"));
    }

    #[test]
    fn written_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/kubeconfig");
        write_private(&p, "x").unwrap();
        write_private(&p, "y").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "y");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
