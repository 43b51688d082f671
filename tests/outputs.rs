//! Nightly-cron outputs: the state file end to end, the Prometheus, CSV and HTML renderers
//! (snapshots of a fixed result, plus format checks), the report flags (`--only`, `--skip`,
//! `--fail-on`, `--quiet`, `--log-format json`) through the binary, and `deploy/` (YAML parses,
//! RBAC is minimal, every flag its commands use exists, and the commands run).
//!
//! Everything runs offline against the demo world snapshot (`mocks/worlds/demo`); no network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use azaudit::findings::{Finding, Severity};
use azaudit::inventory::{ArmKind, Gap, GapScope};
use azaudit::report::{self, AuditResult, CallStats, Format, History, Resolved, Seen, Source};
use serde_json::{Value, json};

const SUB: &str = "6d3f9a52-1c8e-4b7a-9f0d-2e5c8b4a1f37";
const NIGHT1: &str = "2026-11-15T03:00:00Z";
const NIGHT2: &str = "2026-11-27T03:00:00Z";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn demo() -> PathBuf {
    root().join("mocks/worlds/demo")
}

fn azaudit() -> Command {
    let mut c = Command::cargo_bin("azaudit").expect("azaudit binary");
    // Nothing in these tests may depend on the caller's environment.
    c.env_remove("AZAUDIT_LOG").env("NO_COLOR", "1");
    c
}

fn render(r: &AuditResult, f: Format) -> String {
    let mut buf = Vec::new();
    report::render(r, f, false, &mut buf).expect("render");
    String::from_utf8(buf).expect("utf-8")
}

fn arm(rest: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/MC_rg-aks-prod_aks-prod_westeurope/providers/Microsoft.Network/{rest}"
    )
}

/// A fixed, small result with every feature a renderer must show: history (ages, new, a
/// downgrade, a resolved finding), a quota, call statistics, and hostile strings.
fn fixture() -> AuditResult {
    let findings = vec![
        Finding::new(
            "orphaned-public-ip",
            Severity::High,
            arm("publicIPAddresses/kubernetes-ad28491690a6b4001b37301c69980fbb"),
            "Public IP kubernetes-ad28… (51.105.231.12) is tagged for shop/storefront-v1, which no longer exists.",
        )
        .cluster("aks-prod")
        .subscription(SUB)
        .evidence("tags", json!({"k8s-azure-service": "shop/storefront-v1"}))
        .remediation("az network public-ip delete -g MC_rg-aks-prod_aks-prod_westeurope -n kubernetes-ad28491690a6b4001b37301c69980fbb")
        .cleanup(true),
        Finding::new(
            "quota-pressure",
            Severity::High,
            arm("loadBalancers/kubernetes"),
            "Load balancer kubernetes uses 582 of 600 frontend IP configurations.",
        )
        .subscription(SUB)
        .evidence("quota", "frontendIPConfigurations")
        .evidence("current", 582)
        .evidence("limit", 600)
        .evidence("ratio", 0.97),
        Finding::new(
            "service-pending-load-balancer",
            Severity::High,
            "k8s://aks-prod/shop/services/<script>alert(1)</script>",
            "Service \"shop/x\" says <b>hi</b>, costs 1,5 € and links https://example.com/help.",
        )
        .cluster("aks-prod")
        .evidence("note", "a \"quoted\" back\\slash\nand a new line")
        .remediation("kubectl -n shop describe svc x\nkubectl -n shop get events"),
        Finding::new(
            "orphaned-lb-rule",
            Severity::Info,
            arm("loadBalancers/kubernetes/loadBalancingRules/a1b5d04ff86dd4a43825dc254fc639b8-UDP-5080"),
            "Rule a1b5…-UDP-5080 is stale.",
        )
        .cluster("aks-prod")
        .subscription(SUB),
    ];
    let mut r = AuditResult {
        generated_at: NIGHT2.into(),
        source: Source::Snapshot { path: "world".into() },
        subscriptions: vec![SUB.into()],
        clusters: vec!["aks-prod".into()],
        gaps: vec![],
        findings,
        stats: CallStats {
            requests: 42,
            pages: 40,
            retries: 2,
            throttled_429: 1,
            cache_hits: 3,
            bytes: 123_456,
            lowest_remaining_reads: [(SUB.to_string(), 87)].into(),
            kubernetes_requests: 9,
        },
        duration_ms: 12_345,
        rules: vec![
            "orphaned-public-ip",
            "orphaned-lb-rule",
            "quota-pressure",
            "service-pending-load-balancer",
        ],
        history: None,
        suppressed: Vec::new(),
    };
    let mut seen = BTreeMap::new();
    for (i, f) in r.findings.iter_mut().enumerate() {
        let (first, age, new, down) = match i {
            0 => ("2026-11-03T03:00:00Z", 24, false, None),
            1 => ("2026-11-26T03:00:00Z", 1, false, None),
            2 => (NIGHT2, 0, true, None),
            _ => (NIGHT2, 0, true, Some(Severity::Medium)),
        };
        f.first_seen = Some(first.into());
        seen.insert(
            f.key(),
            Seen {
                first_seen: first.into(),
                age_days: age,
                new_since_last_run: new,
                downgraded_from: down,
            },
        );
    }
    r.history = Some(History {
        path: "/var/lib/azaudit/state.json".into(),
        previous_run: Some("2026-11-26T03:00:00Z".into()),
        last_complete_run: Some(NIGHT2.into()),
        min_age: Some("7d".into()),
        seen,
        resolved: vec![Resolved {
            rule: "orphaned-public-ip".into(),
            resource: arm("publicIPAddresses/kubernetes-a0e0c1f2d3b4a5968778695a4b3c2d1e"),
            cluster: Some("aks-prod".into()),
            subscription: Some(SUB.into()),
            severity: Severity::High,
            first_seen: NIGHT1.into(),
            last_seen: "2026-11-26T03:00:00Z".into(),
        }],
        held: 1,
    });
    r
}

// ---------------------------------------------------------------------------------------------
// Snapshots (reviewed by hand; `INSTA_UPDATE=always cargo test -p azaudit --test outputs` rewrites).

/// The HTML without the inline CSS and script bodies (they are static files; the markup is what
/// changes with the data).
fn html_markup(html: &str) -> String {
    let mut out = html.to_string();
    for (open, close) in [("<style>", "</style>"), ("<script>", "</script>")] {
        if let (Some(a), Some(b)) = (out.find(open), out.find(close)) {
            out.replace_range(a + open.len()..b, "…");
        }
    }
    out
}

#[test]
fn snapshots_of_every_new_format() {
    let r = fixture();
    insta::assert_snapshot!("prometheus", render(&r, Format::Prometheus));
    insta::assert_snapshot!("csv", render(&r, Format::Csv));
    insta::assert_snapshot!("html", html_markup(&render(&r, Format::Html)));
    insta::assert_snapshot!("markdown", render(&r, Format::Markdown));
    insta::assert_snapshot!("table", render(&r, Format::Table));
    let json: Value = serde_json::from_str(&render(&r, Format::Json)).expect("json");
    insta::assert_json_snapshot!(
        "json_state_fields",
        json!({
            "state": json["state"],
            "resolved": json["resolved"],
            "findings": json["findings"].as_array().unwrap().iter().map(|f| json!({
                "rule": f["rule"], "severity": f["severity"], "first_seen": f["first_seen"],
                "age_days": f["age_days"], "new_since_last_run": f["new_since_last_run"],
                "downgraded_from": f.get("downgraded_from"), "cleanup_eligible": f["cleanup_eligible"],
            })).collect::<Vec<_>>(),
            "schema_version": json["schema_version"],
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Prometheus

/// Checks the text exposition format: HELP then TYPE before a family's samples, each family in
/// one block, no duplicate series, valid names, quoted and escaped label values, float values,
/// no timestamps. Returns series → value.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut helped = BTreeSet::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut done = BTreeSet::new();
    let mut current = String::new();
    let mut series = BTreeMap::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    assert!(text.ends_with('\n'), "ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helped.insert(name.to_string()), "HELP twice for {name}");
            assert!(!done.contains(name), "{name} split into two blocks");
            if current != name {
                done.insert(std::mem::replace(&mut current, name.to_string()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains(name), "TYPE before HELP for {name}");
            assert!(["counter", "gauge", "untyped"].contains(&kind), "{kind}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} without _total");
            } else {
                assert!(!name.ends_with("_total"), "gauge {name} with _total");
            }
            typed.insert(name.into(), kind.into());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(valid_name(name), "metric name {name:?}");
        assert_eq!(name, current, "sample of {name} outside its family block");
        assert!(typed.contains_key(name), "sample of {name} without TYPE");
        let (labels, value) = if line[name_end..].starts_with('{') {
            // Walk the label set honouring escapes, so a `}` or `"` inside a value is not an end.
            let bytes: Vec<char> = line[name_end + 1..].chars().collect();
            let (mut i, mut in_str, mut esc) = (0, false, false);
            while i < bytes.len() {
                let c = bytes[i];
                if in_str {
                    if esc {
                        assert!(['\\', '"', 'n'].contains(&c), "bad escape \\{c} in {line}");
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '"' {
                        in_str = false;
                    } else {
                        assert!(c != '\n');
                    }
                } else if c == '"' {
                    in_str = true;
                } else if c == '}' {
                    break;
                }
                i += 1;
            }
            let labels: String = bytes[..i].iter().collect();
            let rest: String = bytes[i + 1..].iter().collect();
            (labels, rest)
        } else {
            (String::new(), line[name_end..].to_string())
        };
        let parts: Vec<&str> = value.split_whitespace().collect();
        assert_eq!(parts.len(), 1, "one value and no timestamp: {line}");
        let v: f64 = match parts[0] {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            p => p.parse().unwrap_or_else(|_| panic!("value {p:?} in {line}")),
        };
        let key = format!("{name}{{{labels}}}");
        assert!(series.insert(key.clone(), v).is_none(), "duplicate series {key}");
    }
    series
}

#[test]
fn prometheus_follows_the_exposition_format_and_escapes_labels() {
    let mut r = fixture();
    // A quota row whose resource needs every escape.
    r.findings.push(
        Finding::new(
            "quota-pressure",
            Severity::Medium,
            "odd \"name\" \\ with\nnewline",
            "m",
        )
        .evidence("quota_name", "rules")
        .evidence("current", 1300)
        .evidence("limit", 1500),
    );
    let text = render(&r, Format::Prometheus);
    let s = parse_exposition(&text);
    assert!(
        text.contains(r#"resource="odd \"name\" \\ with\nnewline""#),
        "{text}"
    );
    assert_eq!(s["azaudit_audit_complete{}"], 1.0);
    assert_eq!(s["azaudit_audit_duration_seconds{}"], 12.345);
    assert_eq!(
        s["azaudit_last_success_timestamp_seconds{}"], 1_795_748_400.0,
        "NIGHT2"
    );
    assert_eq!(s["azaudit_arm_requests_total{}"], 42.0);
    assert_eq!(s["azaudit_arm_throttled_total{}"], 1.0);
    assert_eq!(
        s[&format!("azaudit_arm_lowest_remaining_reads{{subscription=\"{SUB}\"}}")],
        87.0
    );
    assert_eq!(
        s[r#"azaudit_findings{rule="orphaned-public-ip",severity="high"}"#],
        1.0
    );
    assert_eq!(
        s[r#"azaudit_findings{rule="orphaned-public-ip",severity="critical"}"#],
        0.0
    );
    assert_eq!(
        s[r#"azaudit_orphans{kind="public-ip",rule="orphaned-public-ip"}"#],
        1.0
    );
    assert_eq!(
        s[r#"azaudit_orphans{kind="lb-rule",rule="orphaned-lb-rule"}"#],
        1.0
    );
    assert_eq!(
        s[r#"azaudit_orphan_max_age_days{rule="orphaned-public-ip"}"#],
        24.0
    );
    assert_eq!(s["azaudit_findings_new{}"], 2.0);
    assert_eq!(s["azaudit_findings_resolved{}"], 1.0);
    let lb = arm("loadBalancers/kubernetes");
    assert_eq!(
        s[&format!("azaudit_quota_ratio{{resource=\"{lb}\",quota=\"frontendIPConfigurations\"}}")],
        0.97
    );
    assert_eq!(
        s[&format!("azaudit_quota_limit{{resource=\"{lb}\",quota=\"frontendIPConfigurations\"}}")],
        600.0
    );
    // Computed when the evidence has no ratio.
    let odd = r#"resource="odd \"name\" \\ with\nnewline",quota="rules""#;
    assert!((s[&format!("azaudit_quota_ratio{{{odd}}}")] - 1300.0 / 1500.0).abs() < 1e-12);

    // Incomplete: the last success comes from the state file, or is absent without one.
    r.gaps.push(Gap {
        scope: GapScope::Arm {
            subscription: SUB.into(),
            kind: ArmKind::LoadBalancers,
            detail: None,
        },
        cause: "429".into(),
    });
    r.history.as_mut().unwrap().last_complete_run = Some("2026-11-26T03:00:00Z".into());
    let s = parse_exposition(&render(&r, Format::Prometheus));
    assert_eq!(s["azaudit_audit_complete{}"], 0.0);
    assert_eq!(s[r#"azaudit_gaps{scope="arm"}"#], 1.0);
    assert_eq!(
        s["azaudit_last_success_timestamp_seconds{}"], 1_795_662_000.0,
        "the day before"
    );
    r.history = None;
    let s = parse_exposition(&render(&r, Format::Prometheus));
    assert!(!s.contains_key("azaudit_last_success_timestamp_seconds{}"));
    assert!(
        !s.contains_key("azaudit_findings_new{}"),
        "no state, no history metrics"
    );
}

// ---------------------------------------------------------------------------------------------
// CSV

/// An RFC 4180 reader: CRLF records, quoted fields with doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => panic!("quote inside an unquoted field"),
            ',' => {
                rec.push(std::mem::take(&mut field));
                at_start = true;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                rec.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut rec));
                at_start = true;
            }
            '\n' => panic!("bare LF ends a record"),
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    assert!(rec.is_empty() && field.is_empty(), "last record ends in CRLF");
    records
}

#[test]
fn csv_is_rfc_4180_with_a_header_and_round_trips_hostile_text() {
    let r = fixture();
    let rows = parse_csv(&render(&r, Format::Csv));
    assert_eq!(rows[0], azaudit::report::csv::HEADER.map(String::from).to_vec());
    assert_eq!(rows.len(), 1 + r.findings.len());
    assert!(rows.iter().all(|row| row.len() == rows[0].len()));
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let pending = &rows[3];
    assert_eq!(
        pending[col("message")],
        r.findings[2].message,
        "commas and quotes survive"
    );
    assert_eq!(
        pending[col("remediation")],
        r.findings[2].remediation,
        "new lines survive"
    );
    let ev: Value = serde_json::from_str(&pending[col("evidence")]).unwrap();
    assert_eq!(ev["note"], "a \"quoted\" back\\slash\nand a new line");
    assert_eq!(rows[1][col("age_days")], "24");
    assert_eq!(rows[3][col("new_since_last_run")], "true");
    assert_eq!(rows[4][col("downgraded_from")], "medium");
    assert_eq!(rows[1][col("cleanup_eligible")], "true");
}

// ---------------------------------------------------------------------------------------------
// HTML

/// Every tag of a document (all `<` in text are escaped, so each `<` opens a tag).
fn tags(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    // Script and style bodies are code, not markup.
    let mut skip_until: Option<&str> = None;
    while let Some(i) = rest.find('<') {
        let after = &rest[i..];
        if let Some(end) = skip_until {
            if after.starts_with(end) {
                skip_until = None;
            } else {
                rest = &after[1..];
                continue;
            }
        }
        let j = after.find('>').expect("tag closes");
        let tag = &after[..=j];
        if tag.starts_with("<script") {
            skip_until = Some("</script>");
        } else if tag.starts_with("<style") {
            skip_until = Some("</style>");
        }
        out.push(tag.to_string());
        rest = &after[j + 1..];
    }
    out
}

#[test]
fn html_is_self_contained_and_escapes_everything() {
    let html = render(&fixture(), Format::Html);
    // The hostile resource is text, never markup.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("Service &quot;shop/x&quot; says &lt;b&gt;hi&lt;/b&gt;"));
    let tags = tags(&html);
    assert_eq!(
        tags.iter().filter(|t| t.starts_with("<script")).count(),
        1,
        "only our script"
    );
    for t in &tags {
        let name: String = t[1..]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(
            ![
                "link", "img", "iframe", "object", "embed", "base", "a", "form", "audio", "video", "source"
            ]
            .contains(&name.as_str()),
            "tag that can load or leave: {t}"
        );
        for attr in ["src=", "href=", "action=", "srcset=", "poster="] {
            assert!(!t.contains(attr), "asset reference in {t}");
        }
        // Attribute values (escaped, so split at quotes): only text-bearing ones may hold a URL.
        let parts: Vec<&str> = t.split('"').collect();
        for pair in parts.chunks(2) {
            let [before, value] = pair else { continue };
            let attr = before
                .trim_end_matches('=')
                .rsplit([' ', '<'])
                .next()
                .unwrap_or("");
            if attr.starts_with("data-") || attr == "title" {
                continue;
            }
            assert!(
                !value.contains("http:") && !value.contains("https:") && !value.contains("//"),
                "URL in attribute {attr} of {t}"
            );
        }
    }
    // URLs appear only as escaped text.
    assert!(html.contains("links https://example.com/help."));
    let css = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    assert!(
        !css.contains("url(") && !css.contains("@import"),
        "CSS loads nothing"
    );
    let script = &html[html.find("<script>").unwrap() + 8..html.find("</script>").unwrap()];
    for api in [
        "fetch(",
        "XMLHttpRequest",
        "import(",
        "WebSocket",
        "sendBeacon",
        "eval(",
        "innerHTML",
    ] {
        assert!(!script.contains(api), "the script must not use {api}");
    }
    // The policy forbids fetching and allows exactly this script, by hash.
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains(&format!("script-src '{}'", azaudit::report::html::script_hash())));
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(
        html.contains(&format!("'sha256-{hash}'")),
        "the hash is of the script as embedded"
    );
    // The sections a team reads.
    for id in ["summary", "findings", "quota", "ages", "resolved", "calls"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    assert!(html.contains("style=\"width:97.0%\""), "the quota bar is drawn");
    assert!(html.contains("Resolved since the last run (1)"));
    assert!(html.contains("younger than --min-age 7d"));
}

#[test]
fn html_without_findings_or_state_says_so() {
    let mut r = fixture();
    r.findings.clear();
    r.history = None;
    r.rules = vec!["orphaned-public-ip"];
    let html = render(&r, Format::Html);
    assert!(html.contains(">No findings.</div>"));
    assert!(html.contains("The quota-pressure rule did not run."));
    assert!(html.contains("Run nightly with <code>--state FILE</code>"));
    assert!(!html.contains("id=\"resolved\""));
}

// ---------------------------------------------------------------------------------------------
// The binary: formats, flags, state

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

const EXTRA_ORPHAN: &str = "kubernetes-a0e0c1f2d3b4a5968778695a4b3c2d1e";

/// The demo world plus one more orphaned public IP (gone by "night 2").
fn night1_world(dir: &Path) -> PathBuf {
    let w = dir.join("night1");
    copy_dir(&demo(), &w);
    let pip = json!({
        "id": arm(&format!("publicIPAddresses/{EXTRA_ORPHAN}")),
        "name": EXTRA_ORPHAN, "type": "Microsoft.Network/publicIPAddresses", "location": "westeurope",
        "tags": {"k8s-azure-cluster-name": "kubernetes", "k8s-azure-service": "shop/checkout-old"},
        "sku": {"name": "Standard"},
        "properties": {"ipAddress": "51.105.231.40", "publicIPAllocationMethod": "Static"}
    });
    std::fs::write(w.join("arm/extra-orphan.json"), pip.to_string()).unwrap();
    w
}

fn json_report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

#[test]
fn state_file_end_to_end_ages_new_resolved_and_min_age() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nightly/state.json");
    let w1 = night1_world(dir.path());
    let r1 = dir.path().join("r1.json");
    azaudit()
        .args([
            "audit",
            "--format",
            "json",
            "--skip",
            "orphaned-nsg-rule",
            "--now",
            NIGHT1,
        ])
        .arg("--snapshot")
        .arg(&w1)
        .arg("--state")
        .arg(&state)
        .arg("--output")
        .arg(&r1)
        .assert()
        .code(1);
    let j1 = json_report(&r1);
    assert!(j1["state"]["previous_run"].is_null());
    assert_eq!(j1["state"]["new_since_last_run"], j1["summary"]["total"]);
    assert!(
        j1["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["new_since_last_run"] == true && f["age_days"] == 0 && f["first_seen"] == NIGHT1)
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);
    let left: Vec<_> = std::fs::read_dir(state.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["state.json"],
        "no lock or temporary file is left behind"
    );

    // Night 2, twelve days later: the extra orphan is gone, the NSG rule is seen for the first time.
    let r2 = dir.path().join("r2.json");
    azaudit()
        .args(["audit", "--format", "json", "--min-age", "7d", "--now", NIGHT2])
        .arg("--snapshot")
        .arg(demo())
        .arg("--state")
        .arg(&state)
        .arg("--output")
        .arg(&r2)
        .assert()
        .code(1);
    let j2 = json_report(&r2);
    assert_eq!(j2["schema_version"], 1);
    assert_eq!(j2["state"]["previous_run"], NIGHT1);
    assert_eq!(j2["state"]["min_age"], "7d");
    let resolved = j2["resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert!(resolved[0]["resource"].as_str().unwrap().ends_with(EXTRA_ORPHAN));
    assert_eq!(resolved[0]["last_seen"], NIGHT1);
    let find = |rule: &str| {
        j2["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .unwrap()
            .clone()
    };
    let pip = find("orphaned-public-ip");
    assert_eq!(
        (pip["age_days"].clone(), pip["new_since_last_run"].clone()),
        (json!(12), json!(false))
    );
    assert_eq!(pip["severity"], "high", "12 days is older than --min-age 7d");
    assert_eq!(pip["cleanup_eligible"], true);
    let nsg = find("orphaned-nsg-rule");
    assert_eq!(nsg["new_since_last_run"], true);
    assert_eq!(
        nsg["severity"], "info",
        "first seen tonight: younger than --min-age"
    );
    assert_eq!(nsg["downgraded_from"], "medium");
    assert_eq!(nsg["cleanup_eligible"], false, "held back from cleanup plans");

    // Night 3, same world: nothing new, nothing resolved (resolved findings are listed once).
    let r3 = dir.path().join("r3.json");
    azaudit()
        .args(["audit", "--format", "json", "--now", "2026-11-28T03:00:00Z"])
        .arg("--snapshot")
        .arg(demo())
        .arg("--state")
        .arg(&state)
        .arg("--output")
        .arg(&r3)
        .assert()
        .code(1);
    let j3 = json_report(&r3);
    assert_eq!(j3["state"]["new_since_last_run"], 0);
    assert_eq!(j3["resolved"], json!([]));
}

#[test]
fn min_age_keeps_young_orphans_from_failing_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let orphans = "orphaned-public-ip,orphaned-lb-frontend";
    // Without --min-age the high orphans fail the run; with it, on their first night, they do not.
    azaudit()
        .args(["audit", "--only", orphans, "--format", "json", "--now", NIGHT1])
        .arg("--snapshot")
        .arg(demo())
        .assert()
        .code(1);
    let out = azaudit()
        .args([
            "audit",
            "--only",
            orphans,
            "--format",
            "csv",
            "--min-age",
            "7d",
            "--now",
            NIGHT1,
        ])
        .arg("--snapshot")
        .arg(demo())
        .arg("--state")
        .arg(&state)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let csv = String::from_utf8(out).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.lines().skip(1).all(|l| l.starts_with("info,")), "{csv}");
    // A week later they are old enough.
    azaudit()
        .args(["audit", "--only", orphans, "--format", "csv", "--min-age", "7d"])
        .args(["--now", "2026-11-22T03:00:00Z"])
        .arg("--snapshot")
        .arg(demo())
        .arg("--state")
        .arg(&state)
        .assert()
        .code(1);
}

#[test]
fn state_errors_are_usage_errors_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let a = azaudit()
        .args(["audit", "--min-age", "7d", "--format", "json"])
        .arg("--snapshot")
        .arg(demo())
        .assert()
        .code(3);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("--state"));
    std::fs::write(&state, r#"{"version": 7, "findings": []}"#).unwrap();
    let a = azaudit()
        .args(["audit", "--format", "json"])
        .arg("--snapshot")
        .arg(demo())
        .arg("--state")
        .arg(&state)
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("has version 7") && err.contains("move the file away"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        r#"{"version": 7, "findings": []}"#,
        "an unknown version is never overwritten"
    );
    let a = azaudit()
        .args(["audit", "--format", "json", "--min-age", "7 days"])
        .arg("--snapshot")
        .arg(demo())
        .arg("--state")
        .arg(&state)
        .assert()
        .code(3);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("e.g. 7d"));
}

#[test]
fn every_format_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    for (format, check) in [
        ("prometheus", "azaudit_audit_complete 1\n"),
        ("csv", "severity,rule,resource,"),
        ("html", "data-rule=\"orphaned-public-ip\""),
        ("markdown", "# azaudit report"),
    ] {
        let out = dir.path().join(format!("report.{format}"));
        azaudit()
            .args(["audit", "--format", format, "--now", NIGHT2])
            .arg("--snapshot")
            .arg(demo())
            .arg("--output")
            .arg(&out)
            .assert()
            .code(1);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(check), "{format}: {text:.300}");
    }
    // One run, several formats; a bad --also-write is a usage error.
    let (html, json_out) = (dir.path().join("also/r.html"), dir.path().join("also/r.json"));
    azaudit()
        .args(["audit", "--format", "csv", "--now", NIGHT2])
        .arg("--snapshot")
        .arg(demo())
        .arg("--also-write")
        .arg(format!("html={}", html.display()))
        .arg("--also-write")
        .arg(format!("JSON={}", json_out.display()))
        .assert()
        .code(1)
        .stdout(predicates::str::starts_with("severity,rule,"));
    assert!(std::fs::read_to_string(&html).unwrap().contains("</html>"));
    assert_eq!(json_report(&json_out)["generated_at"], NIGHT2);
    for bad in ["html", "pdf=/tmp/x", "html="] {
        let a = azaudit()
            .args(["audit", "--also-write", bad])
            .arg("--snapshot")
            .arg(demo())
            .assert()
            .code(3);
        assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("--also-write"));
    }
    let prom = std::fs::read_to_string(dir.path().join("report.prometheus")).unwrap();
    let s = parse_exposition(&prom);
    assert_eq!(
        s[r#"azaudit_findings{rule="empty-backend-pool",severity="critical"}"#],
        1.0
    );
    assert_eq!(s["azaudit_arm_requests_total{}"], 0.0, "offline: no ARM request");
}

fn rules_in(j: &Value) -> BTreeSet<String> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn only_skip_and_fail_on() {
    let run = |args: &[&str], code: i32| -> Value {
        let out = azaudit()
            .args(["audit", "--format", "json"])
            .args(args)
            .arg("--snapshot")
            .arg(demo())
            .assert()
            .code(code)
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    let j = run(&["--only", "orphaned-public-ip,unattached-public-ip"], 1);
    assert_eq!(
        rules_in(&j),
        ["orphaned-public-ip", "unattached-public-ip"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        j["scope"]["rules"],
        json!(["orphaned-public-ip", "unattached-public-ip"])
    );
    let j = run(&["--only", "orphaned-public-ip", "--only", "orphaned-lb-rule"], 1);
    assert_eq!(rules_in(&j).len(), 2, "repeatable");
    let all = run(&[], 1);
    let j = run(&["--skip", "orphaned-public-ip,empty-backend-pool"], 1);
    let mut expected = rules_in(&all);
    expected.remove("orphaned-public-ip");
    expected.remove("empty-backend-pool");
    assert_eq!(rules_in(&j), expected);
    // unattached-public-ip is low: below the default --fail-on high, at --fail-on low.
    run(&["--only", "unattached-public-ip"], 0);
    run(&["--only", "unattached-public-ip", "--fail-on", "low"], 1);
    run(&["--only", "empty-backend-pool", "--fail-on", "critical"], 1);
    run(&["--only", "orphaned-lb-rule", "--fail-on", "critical"], 0);
    let a = azaudit()
        .args(["audit", "--only", "no-such-rule"])
        .arg("--snapshot")
        .arg(demo())
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("unknown rule \"no-such-rule\"") && err.contains("orphaned-public-ip"),
        "{err}"
    );
    azaudit()
        .args(["audit", "--fail-on", "severe"])
        .arg("--snapshot")
        .arg(demo())
        .assert()
        .code(3);
}

#[test]
fn quiet_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("world");
    copy_dir(&demo(), &w);
    // An unreadable file: a warning on stderr, a gap, exit 2.
    std::fs::write(w.join("arm/broken.json"), "{ not json").unwrap();
    let run = |args: &[&str]| {
        let a = azaudit()
            .args(args)
            .args(["audit", "--format", "json"])
            .arg("--snapshot")
            .arg(&w)
            .assert()
            .code(2);
        let o = a.get_output();
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (out, err) = run(&[]);
    assert!(err.contains("broken.json"), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["complete"], false);
    let (_, err) = run(&["--log-format", "json"]);
    let lines: Vec<Value> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l.to_string().contains("broken.json"))
    );
    let (out, err) = run(&["--quiet"]);
    assert_eq!(err, "", "--quiet: only errors on stderr");
    assert!(out.contains("\"gaps\""), "the report is still written");
}

// ---------------------------------------------------------------------------------------------
// deploy/

fn deploy(name: &str) -> String {
    std::fs::read_to_string(root().join("deploy").join(name)).unwrap()
}

fn yaml_docs(name: &str) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(&deploy(name))
        .map(|d| serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("{name}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn y<'a>(v: &'a serde_yaml::Value, path: &[&str]) -> &'a serde_yaml::Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn ys(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn by_kind<'a>(docs: &'a [serde_yaml::Value], kind: &str) -> Vec<&'a serde_yaml::Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

#[test]
fn cronjob_and_rbac_manifests_are_valid_and_minimal() {
    let cron = yaml_docs("cronjob.yaml");
    let rbac = yaml_docs("rbac.yaml");
    let kust = yaml_docs("kustomization.yaml");
    assert_eq!(ys(&kust[0]["resources"]), vec!["cronjob.yaml", "rbac.yaml"]);
    for d in cron.iter().chain(&rbac) {
        assert!(
            d["apiVersion"].is_string() && d["kind"].is_string() && y(d, &["metadata", "name"]).is_string()
        );
    }
    assert_eq!(by_kind(&cron, "Namespace").len(), 1);
    let sa = by_kind(&cron, "ServiceAccount")[0];
    let client_id = y(
        sa,
        &["metadata", "annotations", "azure.workload.identity/client-id"],
    );
    assert!(client_id.is_string(), "workload identity client id annotation");
    let cj = by_kind(&cron, "CronJob")[0];
    assert_eq!(cj["apiVersion"], "batch/v1");
    assert_eq!(y(cj, &["spec", "concurrencyPolicy"]), "Forbid");
    let pod = y(cj, &["spec", "jobTemplate", "spec", "template"]);
    let label = y(pod, &["metadata", "labels", "azure.workload.identity/use"]);
    assert_eq!(
        label.as_str(),
        Some("true"),
        "the label value is the string \"true\""
    );
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(
        spec["restartPolicy"], "Never",
        "a failed audit is not rerun in a loop"
    );
    assert_eq!(
        y(spec, &["securityContext", "runAsNonRoot"]).as_bool(),
        Some(true)
    );
    let containers: Vec<&serde_yaml::Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_sequence().into_iter().flatten())
        .collect();
    for c in &containers {
        assert_eq!(
            y(c, &["securityContext", "allowPrivilegeEscalation"]).as_bool(),
            Some(false)
        );
        assert_eq!(
            y(c, &["securityContext", "readOnlyRootFilesystem"]).as_bool(),
            Some(true)
        );
        assert_eq!(
            ys(y(c, &["securityContext", "capabilities", "drop"])),
            vec!["ALL"]
        );
    }
    // The state volume is persistent; the PVC exists.
    let claim = spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|v| y(v, &["persistentVolumeClaim", "claimName"]).as_str())
        .unwrap();
    assert!(
        by_kind(&cron, "PersistentVolumeClaim")
            .iter()
            .any(|p| y(p, &["metadata", "name"]) == claim)
    );

    // RBAC: list only, on exactly services, nodes, endpointslices, and pods in kube-system.
    let mut granted = BTreeSet::new();
    for role in by_kind(&rbac, "ClusterRole")
        .into_iter()
        .chain(by_kind(&rbac, "Role"))
    {
        let ns = y(role, &["metadata", "namespace"])
            .as_str()
            .unwrap_or("*")
            .to_string();
        for rule in role["rules"].as_sequence().unwrap() {
            assert_eq!(ys(&rule["verbs"]), vec!["list"], "list only");
            assert!(rule["resourceNames"].is_null());
            for g in ys(&rule["apiGroups"]) {
                for r in ys(&rule["resources"]) {
                    granted.insert(format!("{ns}/{g}/{r}"));
                }
            }
        }
    }
    let expected: BTreeSet<String> = [
        "*//services",
        "*//nodes",
        "*/discovery.k8s.io/endpointslices",
        "kube-system//pods",
    ]
    .map(String::from)
    .into();
    assert_eq!(granted, expected);
    // Each role is bound to the ServiceAccount.
    for (binding, role_kind) in [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")] {
        let b = by_kind(&rbac, binding)[0];
        assert_eq!(y(b, &["roleRef", "kind"]).as_str(), Some(role_kind));
        let role = by_kind(&rbac, role_kind)[0];
        assert_eq!(y(b, &["roleRef", "name"]), y(role, &["metadata", "name"]));
        let subject = &b["subjects"][0];
        assert_eq!(subject["kind"], "ServiceAccount");
        assert_eq!(subject["name"], sa["metadata"]["name"]);
        assert_eq!(subject["namespace"], sa["metadata"]["namespace"]);
    }
}

/// The azaudit command lines of a shell script: segments split at newlines, `;`, `&&`, `||`,
/// with backslash continuations joined; a segment counts when its first word is `azaudit`.
fn shell_invocations(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        for seg in line.split([';', '|', '&']) {
            let words: Vec<String> = seg
                .split_whitespace()
                .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
                .collect();
            let Some(first) = words.first() else { continue };
            let first = first.trim_start_matches(['-', '@', '+', '!']);
            if first.rsplit('/').next() == Some("azaudit") {
                out.push(words[1..].to_vec());
            }
        }
    }
    out
}

/// Every azaudit command line in deploy/: (file, arguments).
fn deploy_invocations() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    // The CronJob: containers running the azaudit image.
    let cron = yaml_docs("cronjob.yaml");
    let pod = y(
        by_kind(&cron, "CronJob")[0],
        &["spec", "jobTemplate", "spec", "template", "spec"],
    );
    for key in ["initContainers", "containers"] {
        for c in pod[key].as_sequence().into_iter().flatten() {
            if !c["image"].as_str().unwrap_or("").contains("azaudit") {
                continue;
            }
            let (cmd, args) = (ys(&c["command"]), ys(&c["args"]));
            if cmd.first().is_some_and(|c| c.ends_with("sh")) && cmd.get(1).map(String::as_str) == Some("-c")
            {
                for a in args {
                    for inv in shell_invocations(&a) {
                        out.push(("cronjob.yaml".into(), inv));
                    }
                }
            } else {
                out.push((
                    "cronjob.yaml".into(),
                    cmd.iter().skip(1).chain(&args).cloned().collect(),
                ));
            }
        }
    }
    // systemd: ExecStart= lines.
    let unit = deploy("azaudit.service").replace("\\\n", " ");
    for line in unit.lines() {
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            out.extend(
                shell_invocations(cmd)
                    .into_iter()
                    .map(|i| ("azaudit.service".into(), i)),
            );
        }
    }
    // Dockerfile: ENTRYPOINT is the binary, CMD its arguments.
    let docker = deploy("Dockerfile");
    let array = |prefix: &str| -> Option<Vec<String>> {
        docker
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|a| serde_json::from_str(a.trim()).expect("exec-form JSON array"))
    };
    let entry = array("ENTRYPOINT ").expect("ENTRYPOINT");
    assert!(entry[0].ends_with("/azaudit"));
    out.push(("Dockerfile".into(), array("CMD ").unwrap_or_default()));
    out
}

fn help(args: &[&str]) -> String {
    let a = azaudit().args(args).arg("--help").assert().code(0);
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

/// The long and short options a help text defines.
fn options(help: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in help.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') {
            continue;
        }
        for word in t.split([' ', ',', '=']) {
            if word.starts_with("--") && word.len() > 2 {
                set.insert(
                    word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                        .to_string(),
                );
            } else if word.len() == 2 && word.starts_with('-') {
                set.insert(word.to_string());
            }
        }
    }
    set
}

#[test]
fn every_flag_used_in_deploy_exists() {
    let invocations = deploy_invocations();
    assert!(
        invocations.iter().any(|(f, _)| f == "cronjob.yaml"),
        "the CronJob runs azaudit"
    );
    assert!(invocations.iter().any(|(f, _)| f == "azaudit.service"));
    let commands: BTreeSet<String> = {
        let top = help(&[]);
        let start = top.find("Commands:").unwrap();
        top[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    for (file, args) in &invocations {
        let sub = args.iter().find(|a| commands.contains(*a)).cloned();
        let text = match &sub {
            Some(s) => help(&[s.as_str()]),
            None => help(&[]),
        };
        let known = options(&text);
        for (i, a) in args.iter().enumerate() {
            if !a.starts_with('-') {
                continue;
            }
            let flag = a.split('=').next().unwrap();
            assert!(
                known.contains(flag),
                "{file}: `azaudit {}` uses {flag}, which `azaudit {} --help` does not list",
                args.join(" "),
                sub.as_deref().unwrap_or("")
            );
            // Enumerated values (--format, --log-format, --fail-on) must be accepted ones.
            if flag == "--format" || flag == "--log-format" {
                let v = args.get(i + 1).unwrap();
                assert!(
                    text.contains(&format!(" {v}")) || text.contains(&format!("{v},")),
                    "{file}: {flag} {v}"
                );
            }
        }
    }
}

/// Runs a deploy command line for real, against the demo snapshot, with its paths moved into a
/// temporary directory: it must audit and write its metrics and state.
fn run_deploy_command(args: &[String], dir: &Path) {
    let mapped: Vec<String> = args
        .iter()
        .map(|a| match a.split_once("=/") {
            // --also-write FORMAT=/path
            Some((format, path)) if !a.starts_with('-') => format!("{format}={}", dir.join(path).display()),
            _ if a.starts_with('/') => dir.join(a.trim_start_matches('/')).display().to_string(),
            _ => a.clone(),
        })
        .collect();
    azaudit()
        .args(&mapped)
        .arg("--snapshot")
        .arg(demo())
        .arg("--now")
        .arg(NIGHT2)
        .assert()
        .code(1);
    let output = mapped[mapped.iter().position(|a| a == "--output").unwrap() + 1].clone();
    let prom = std::fs::read_to_string(output).unwrap();
    parse_exposition(&prom);
    let state = mapped[mapped.iter().position(|a| a == "--state").unwrap() + 1].clone();
    assert!(Path::new(&state).exists());
    for w in mapped.windows(2).filter(|w| w[0] == "--also-write") {
        let (format, path) = w[1].split_once('=').unwrap();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        match format {
            "json" => assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["schema_version"], 1),
            "html" => assert!(text.starts_with("<!DOCTYPE html>")),
            other => panic!("unexpected --also-write format {other}"),
        }
    }
}

#[test]
fn the_deploy_commands_run() {
    for (file, args) in deploy_invocations()
        .into_iter()
        .filter(|(f, _)| f != "Dockerfile")
    {
        let dir = tempfile::tempdir().unwrap();
        assert!(args.contains(&"--state".to_string()), "{file} keeps a state file");
        assert!(
            args.windows(2).any(|w| w == ["--format", "prometheus"]),
            "{file} writes metrics"
        );
        run_deploy_command(&args, dir.path());
    }
}

#[test]
fn systemd_units_are_hardened_and_timed() {
    let service = deploy("azaudit.service");
    for line in [
        "Type=oneshot",
        "User=azaudit",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "StateDirectory=azaudit",
        "SuccessExitStatus=1 2",
    ] {
        assert!(service.lines().any(|l| l == line), "azaudit.service lacks {line}");
    }
    let timer = deploy("azaudit.timer");
    assert!(timer.contains("OnCalendar=") && timer.contains("Persistent=true"));
    assert!(timer.contains("WantedBy=timers.target"));
    let docker = deploy("Dockerfile");
    assert_eq!(
        docker.matches("\nFROM ").count() + usize::from(docker.starts_with("FROM ")),
        2,
        "multi-stage"
    );
    assert!(docker.contains("ca-certificates") && docker.contains("USER 10001"));
    assert!(docker.contains("cargo build --release --locked"));
}
