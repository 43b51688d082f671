//! `azaudit doctor`: the first command an ops engineer runs. It reports, step by step, whether
//! azaudit can audit from here: which cloud and why, the cloud config's problems, which
//! credential source was picked (and every attempt before it), token acquisition, ARM
//! reachability, per subscription whether the principal can read every resource type the audit
//! lists (from `Microsoft.Authorization/permissions`, confirmed by a cheap list) and, separately,
//! whether it could clean up, and per Kubernetes context whether Services, Nodes,
//! EndpointSlices and kube-system Pods can be listed. Every failure carries the exact fix.
//!
//! Output: human text (default) or `--format json` (schema `azaudit.doctor/v1`, README). Exit
//! status 0 when everything needed works, 3 otherwise. Doctor only reads: it never writes to
//! ARM or Kubernetes, follows no `nextLink`, and sends the bearer token only to the chosen
//! cloud's ARM endpoint. It must not print secrets (it never sees more than [`Secret`]s).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::audit::Exit;
use crate::auth::{self, Attempt, AttemptOutcome, AuthArgs, AuthError, Authenticated, IdentityInfo, guard};
use crate::cli::ColorChoice;
use crate::cloud_config::{CloudConfig, ProblemLevel};
use crate::secret::Secret;

/// The read actions a complete audit needs (one list per type at subscription scope, VMSS
/// instances and their NICs, usages; domain.md §6.2).
pub const READ_ACTIONS: &[&str] = &[
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Network/loadBalancers/read",
    "Microsoft.Network/publicIPAddresses/read",
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/networkInterfaces/read",
    "Microsoft.Network/virtualNetworks/read",
    "Microsoft.Network/locations/usages/read",
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachineScaleSets/read",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
    "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read",
];

/// What cleanup would do: delete orphaned public IPs, rewrite load balancers (frontends, rules,
/// probes, pools) and NSGs (rules).
pub const CLEANUP_ACTIONS: &[&str] = &[
    "Microsoft.Network/publicIPAddresses/delete",
    "Microsoft.Network/loadBalancers/write",
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/networkSecurityGroups/securityRules/delete",
];

const SUBSCRIPTIONS_API: &str = "2022-12-01";
const PERMISSIONS_API: &str = "2022-04-01";
const NETWORK_API: &str = "2024-05-01";
const ARM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    Human,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Subscriptions to check (repeatable, comma-separated; default: the cloud config's
    /// subscriptionId, else every subscription the principal can see).
    #[arg(long = "subscription", value_delimiter = ',', value_name = "ID")]
    pub subscriptions: Vec<String>,
    /// kubeconfig file (default: KUBECONFIG, else ~/.kube/config; none: Kubernetes is skipped).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes contexts to check (repeatable, comma-separated; default: the current context).
    #[arg(long = "context", value_delimiter = ',', value_name = "NAME")]
    pub contexts: Vec<String>,
    /// Check every context of the kubeconfig.
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,
    /// Read the cloud config from the kube-system/azure-cloud-provider Secret of the first
    /// checked context (when --cloud-config is not given).
    #[arg(long)]
    pub cloud_config_from_cluster: bool,
    /// Treat missing cleanup rights as a failure (exit 3), for runs that will clean up.
    #[arg(long)]
    pub require_cleanup: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Human)]
    pub format: DoctorFormat,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Skip,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id: `cloud`, `cloud-config`, `auth`, `arm`, `subscription:<id>:read`,
    /// `subscription:<id>:cleanup`, `kubernetes:<context>:<what>`, ...
    pub id: String,
    /// The heading it is shown under.
    pub section: String,
    pub status: Status,
    pub message: String,
    /// The command or change that fixes it, when something is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CloudReport {
    pub name: String,
    pub arm_endpoint: String,
    pub authority_host: String,
    pub audience: String,
    pub reason: String,
}

/// The whole report (`--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// No check failed.
    pub ok: bool,
    pub cloud: Option<CloudReport>,
    pub identity: Option<IdentityInfo>,
    pub attempts: Vec<Attempt>,
    pub checks: Vec<Check>,
}

struct Doctor {
    checks: Vec<Check>,
}

impl Doctor {
    fn add(
        &mut self,
        id: impl Into<String>,
        section: impl Into<String>,
        status: Status,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            id: id.into(),
            section: section.into(),
            status,
            message: message.into(),
            fix,
        });
    }
}

/// `azaudit doctor`.
pub fn run(args: &DoctorArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let report = rt.block_on(diagnose(args));
    let mut out = Vec::new();
    match args.format {
        DoctorFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.push(b'\n');
        }
        DoctorFormat::Human => render_human(&report, use_color(color), &mut out)?,
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    Ok(if report.ok { Exit::Clean } else { Exit::Error })
}

fn use_color(c: ColorChoice) -> bool {
    use std::io::IsTerminal;
    match c {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Runs every check and collects the report; never fails as a whole (a failing step is a check).
pub async fn diagnose(args: &DoctorArgs) -> Report {
    let mut d = Doctor { checks: Vec::new() };
    // Loaded first (the cloud config may come from the cluster), reported last.
    let mut kube_checks = Doctor { checks: Vec::new() };
    let kube = KubeTargets::load(args, &mut kube_checks);

    // The cloud config: a file, or the cluster's Secret.
    let mut config = None;
    if let Some(path) = &args.auth.cloud_config {
        match CloudConfig::load(path) {
            Ok(c) => config = Some(c),
            Err(e) => d.add(
                "cloud-config",
                "Cloud config",
                Status::Fail,
                e.to_string(),
                Some("fix or drop --cloud-config".into()),
            ),
        }
    } else if args.cloud_config_from_cluster {
        match kube
            .as_ref()
            .and_then(|k| k.contexts.first().map(|c| (k, c.clone())))
        {
            Some((k, ctx)) => match k.cloud_config_secret(&ctx, args.auth.loopback_only).await {
                Ok(c) => config = Some(c),
                Err(e) => d.add("cloud-config", "Cloud config", Status::Fail, e, None),
            },
            None => d.add(
                "cloud-config",
                "Cloud config",
                Status::Fail,
                "--cloud-config-from-cluster needs a kubeconfig context",
                Some("pass --kubeconfig and --context".into()),
            ),
        }
    }
    if let Some(c) = &config {
        report_cloud_config(&mut d, c);
    }

    // Cloud and credential.
    let auth = auth::authenticate(&args.auth, config.as_ref()).await;
    let mut report = Report {
        schema: "azaudit.doctor/v1",
        ok: false,
        cloud: None,
        identity: None,
        attempts: Vec::new(),
        checks: Vec::new(),
    };
    match &auth {
        Ok(a) => {
            report.cloud = Some(CloudReport {
                name: a.cloud.name.clone(),
                arm_endpoint: a.cloud.arm_endpoint.to_string(),
                authority_host: a.cloud.authority_host.to_string(),
                audience: a.cloud.audience.clone(),
                reason: a.cloud_reason.clone(),
            });
            d.add(
                "cloud",
                "Cloud",
                Status::Ok,
                format!(
                    "{}: ARM {}, authority {}, audience {} ({})",
                    a.cloud.name,
                    a.cloud.arm_endpoint,
                    a.cloud.authority_host,
                    a.cloud.audience,
                    a.cloud_reason
                ),
                None,
            );
            report.identity = Some(a.identity.clone());
            report.attempts = a.attempts.clone();
            for at in &a.attempts {
                d.add(
                    format!("auth:{}", at.source),
                    "Credential",
                    match at.outcome {
                        AttemptOutcome::Ok => Status::Ok,
                        AttemptOutcome::Skipped => Status::Skip,
                        // An earlier source failing is worth knowing, but a later one worked.
                        AttemptOutcome::Failed => Status::Warn,
                    },
                    format!("{}: {}", at.source, at.detail),
                    None,
                );
            }
            let who = &a.identity;
            d.add(
                "auth",
                "Credential",
                Status::Ok,
                format!(
                    "token acquired with {} (tenant {}, client {}, object {})",
                    who.source,
                    who.tenant_id.as_deref().unwrap_or("unknown"),
                    who.client_id.as_deref().unwrap_or("unknown"),
                    who.object_id.as_deref().unwrap_or("unknown"),
                ),
                None,
            );
            for w in &a.warnings {
                d.add("auth:warning", "Credential", Status::Warn, w.clone(), None);
            }
        }
        Err(e) => {
            if let AuthError::NoCredential { attempts } = e {
                report.attempts = attempts.clone();
            }
            let id = match e {
                AuthError::Cloud(_) => "cloud",
                _ => "auth",
            };
            d.add(id, "Credential", Status::Fail, e.to_string(), None);
        }
    }

    if let Ok(a) = &auth {
        check_arm(&mut d, a, args, config.as_ref()).await;
    } else {
        d.add("arm", "ARM", Status::Skip, "not checked: no credential", None);
    }

    d.checks.extend(kube_checks.checks);
    if let Some(k) = &kube {
        for ctx in &k.contexts {
            check_context(&mut d, k, ctx, args.auth.loopback_only).await;
        }
    }

    report.ok = !d.checks.iter().any(|c| c.status == Status::Fail);
    report.checks = d.checks;
    report
}

fn report_cloud_config(d: &mut Doctor, c: &CloudConfig) {
    let section = format!("Cloud config ({})", c.origin);
    if c.problems.is_empty() {
        d.add(
            "cloud-config",
            section,
            Status::Ok,
            "parsed without problems",
            None,
        );
        return;
    }
    for p in &c.problems {
        // The provider would refuse an Error-level config; azaudit still reads what it can, so
        // it is a warning for the audit, not a failure.
        let status = match p.level {
            ProblemLevel::Error | ProblemLevel::Warning => Status::Warn,
            ProblemLevel::Info => Status::Ok,
        };
        d.add(
            format!("cloud-config:{}", p.path),
            section.clone(),
            status,
            format!(
                "{} ({}): {}",
                p.path,
                match p.level {
                    ProblemLevel::Error => "the provider would refuse this",
                    ProblemLevel::Warning => "warning",
                    ProblemLevel::Info => "info",
                },
                p.message
            ),
            None,
        );
    }
}

/// GET an ARM path (relative, with its api-version) with the bearer token. Only the cloud's
/// ARM endpoint is ever contacted; a 429 is retried once after its Retry-After (at most 30 s).
async fn arm_get(
    a: &Authenticated,
    token: &Secret,
    path: &str,
    loopback_only: bool,
) -> Result<(u16, Value), String> {
    let url = a
        .cloud
        .arm_endpoint
        .join(path.trim_start_matches('/'))
        .map_err(|e| e.to_string())?;
    guard::check(&url, loopback_only).map_err(|e| e.to_string())?;
    for attempt in 0..2 {
        let resp = a
            .http
            .get(url.clone())
            .timeout(ARM_TIMEOUT)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| AuthError::from_reqwest("ARM", &url, &e).to_string())?;
        let status = resp.status().as_u16();
        if status == 429 && attempt == 0 {
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(5)
                .min(30);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Ok((status, json));
    }
    Err("ARM kept answering 429 (throttled): retry later".into())
}

/// ARM's error `code: message`.
fn arm_error(v: &Value) -> String {
    let code = v.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
    let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
    match (code, msg) {
        ("", "") => "no error details".into(),
        (c, m) => format!("{c}: {m}"),
    }
}

/// ARM's wildcard match for actions (`*`, `*/read`, `Microsoft.Network/*`), case-insensitive
/// (https://learn.microsoft.com/azure/role-based-access-control/role-definitions).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ai) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ai));
            pi += 1;
        } else if pi < p.len() && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if let Some((sp, sa)) = star {
            pi = sp + 1;
            ai = sa + 1;
            star = Some((sp, sa + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether the permission entries (`{actions, notActions}`) grant `action`: some entry allows
/// it and does not exclude it.
pub fn permitted(entries: &[Value], action: &str) -> bool {
    let list = |e: &Value, k: &str| -> Vec<String> {
        e.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    entries.iter().any(|e| {
        list(e, "actions").iter().any(|p| action_matches(p, action))
            && !list(e, "notActions").iter().any(|p| action_matches(p, action))
    })
}

async fn check_arm(d: &mut Doctor, a: &Authenticated, args: &DoctorArgs, config: Option<&CloudConfig>) {
    let lo = args.auth.loopback_only;
    let token = match a.bearer().await {
        Ok(t) => t,
        Err(e) => {
            d.add("arm", "ARM", Status::Fail, e.to_string(), None);
            return;
        }
    };
    let assignee = a
        .identity
        .object_id
        .clone()
        .or(a.identity.client_id.clone())
        .unwrap_or_else(|| "<principal id>".into());
    // Reachability, and the subscriptions this principal sees.
    let visible: Vec<(String, String)> = match arm_get(
        a,
        &token,
        &format!("subscriptions?api-version={SUBSCRIPTIONS_API}"),
        lo,
    )
    .await
    {
        Ok((200, v)) => {
            let subs: Vec<(String, String)> = v
                .get("value")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| {
                            let id = s.get("subscriptionId")?.as_str()?.to_string();
                            let name = s
                                .get("displayName")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string();
                            Some((id, name))
                        })
                        .collect()
                })
                .unwrap_or_default();
            d.add(
                "arm",
                "ARM",
                Status::Ok,
                format!(
                    "{} reachable; the principal sees {} subscription(s)",
                    a.cloud.arm_endpoint,
                    subs.len()
                ),
                None,
            );
            subs
        }
        Ok((status, v)) => {
            d.add(
                "arm",
                "ARM",
                Status::Fail,
                format!("listing subscriptions at {} answered HTTP {status} ({})", a.cloud.arm_endpoint, arm_error(&v)),
                Some(if status == 401 {
                    "the token was refused: check that --audience matches this ARM endpoint and that the tenant is the subscriptions' tenant".into()
                } else {
                    "check --arm-endpoint / --cloud".into()
                }),
            );
            return;
        }
        Err(e) => {
            d.add("arm", "ARM", Status::Fail, e, None);
            return;
        }
    };
    let wanted: Vec<String> = if !args.subscriptions.is_empty() {
        args.subscriptions.clone()
    } else if let Some(s) = config.and_then(|c| c.subscription_id()) {
        vec![s.to_string()]
    } else {
        visible.iter().map(|(id, _)| id.clone()).collect()
    };
    if wanted.is_empty() {
        d.add(
            "subscriptions",
            "ARM",
            Status::Fail,
            "the principal sees no subscription, and none was named",
            Some(format!(
                "grant it Reader on the subscriptions to audit: `az role assignment create --assignee {assignee} --role Reader --scope /subscriptions/<subscription id>`, or name them with --subscription"
            )),
        );
        return;
    }
    for sub in &wanted {
        let name = visible
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(sub))
            .map(|(_, n)| n.clone())
            .filter(|n| !n.is_empty());
        let section = match &name {
            Some(n) => format!("Subscription {sub} ({n})"),
            None => format!("Subscription {sub}"),
        };
        check_subscription(d, a, &token, sub, &section, &assignee, args).await;
    }
}

async fn check_subscription(
    d: &mut Doctor,
    a: &Authenticated,
    token: &Secret,
    sub: &str,
    section: &str,
    assignee: &str,
    args: &DoctorArgs,
) {
    let lo = args.auth.loopback_only;
    let scope = format!("/subscriptions/{sub}");
    let reader_fix = format!("az role assignment create --assignee {assignee} --role Reader --scope {scope}");
    let cleanup_fix = format!(
        "az role assignment create --assignee {assignee} --role \"Network Contributor\" --scope {scope}"
    );
    let perms = arm_get(
        a,
        token,
        &format!(
            "subscriptions/{sub}/providers/Microsoft.Authorization/permissions?api-version={PERMISSIONS_API}"
        ),
        lo,
    )
    .await;
    let entries: Option<Vec<Value>> = match &perms {
        Ok((200, v)) => Some(
            v.get("value")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
        _ => None,
    };
    // The cheap read that confirms (or refutes) what the permissions say.
    let probe = arm_get(
        a,
        token,
        &format!("subscriptions/{sub}/providers/Microsoft.Network/loadBalancers?api-version={NETWORK_API}"),
        lo,
    )
    .await;
    let read_id = format!("subscription:{sub}:read");
    let missing_read: Vec<&str> = match &entries {
        Some(e) => READ_ACTIONS
            .iter()
            .copied()
            .filter(|x| !permitted(e, x))
            .collect(),
        None => Vec::new(),
    };
    match (&probe, &entries) {
        (Ok((200, _)), Some(_)) if missing_read.is_empty() => d.add(
            read_id,
            section,
            Status::Ok,
            format!(
                "read: the principal holds every read the audit needs ({} actions) and listing load balancers works",
                READ_ACTIONS.len()
            ),
            None,
        ),
        (Ok((200, _)), Some(_)) => d.add(
            read_id,
            section,
            Status::Fail,
            format!(
                "read: listing load balancers works, but the principal lacks {}; the audit would be incomplete",
                missing_read.join(", ")
            ),
            Some(reader_fix.clone()),
        ),
        (Ok((200, _)), None) => d.add(
            read_id,
            section,
            Status::Warn,
            format!(
                "read: listing load balancers works, but the permissions could not be read ({}); other types may be refused",
                match &perms {
                    Ok((s, v)) => format!("HTTP {s}: {}", arm_error(v)),
                    Err(e) => e.clone(),
                }
            ),
            Some(reader_fix.clone()),
        ),
        (Ok((403, v)), _) => d.add(
            read_id,
            section,
            Status::Fail,
            format!(
                "read: ARM refuses to list load balancers in {scope} (HTTP 403 {}){}",
                arm_error(v),
                if missing_read.is_empty() {
                    String::new()
                } else {
                    format!("; missing: {}", missing_read.join(", "))
                }
            ),
            Some(reader_fix.clone()),
        ),
        (Ok((404, v)), _) => d.add(
            read_id,
            section,
            Status::Fail,
            format!("read: subscription not found (HTTP 404 {})", arm_error(v)),
            Some("check the subscription id (`az account list -o table`) and that it belongs to this tenant and cloud".into()),
        ),
        (Ok((s, v)), _) => d.add(
            read_id,
            section,
            Status::Fail,
            format!("read: listing load balancers answered HTTP {s} ({})", arm_error(v)),
            None,
        ),
        (Err(e), _) => d.add(read_id, section, Status::Fail, format!("read: {e}"), None),
    }
    let cleanup_id = format!("subscription:{sub}:cleanup");
    match &entries {
        Some(e) => {
            let missing: Vec<&str> = CLEANUP_ACTIONS
                .iter()
                .copied()
                .filter(|x| !permitted(e, x))
                .collect();
            if missing.is_empty() {
                d.add(
                    cleanup_id,
                    section,
                    Status::Ok,
                    "cleanup: the principal could perform cleanup",
                    None,
                );
            } else {
                d.add(
                    cleanup_id,
                    section,
                    if args.require_cleanup {
                        Status::Fail
                    } else {
                        Status::Warn
                    },
                    format!(
                        "cleanup: not possible (read-only audit is fine): missing {}",
                        missing.join(", ")
                    ),
                    Some(cleanup_fix),
                );
            }
        }
        None => d.add(
            cleanup_id,
            section,
            if args.require_cleanup {
                Status::Fail
            } else {
                Status::Skip
            },
            "cleanup: unknown (permissions could not be read)",
            None,
        ),
    }
}

/// The kubeconfig and the contexts to check.
struct KubeTargets {
    path: String,
    config: kube::config::Kubeconfig,
    contexts: Vec<String>,
}

impl KubeTargets {
    fn load(args: &DoctorArgs, d: &mut Doctor) -> Option<KubeTargets> {
        let explicit = args.kubeconfig.clone();
        let (kc, path) = match explicit {
            Some(p) => match kube::config::Kubeconfig::read_from(&p) {
                Ok(k) => (k, p.display().to_string()),
                Err(e) => {
                    d.add(
                        "kubeconfig",
                        "Kubernetes",
                        Status::Fail,
                        format!("cannot read kubeconfig {}: {e}", p.display()),
                        Some("check --kubeconfig".into()),
                    );
                    return None;
                }
            },
            None => match kube::config::Kubeconfig::from_env() {
                Ok(Some(k)) => (k, "KUBECONFIG".to_string()),
                Ok(None) => {
                    let home = std::env::var_os("HOME").map(PathBuf::from)?;
                    let p = home.join(".kube").join("config");
                    if !p.exists() {
                        d.add(
                            "kubeconfig",
                            "Kubernetes",
                            Status::Skip,
                            "no kubeconfig (KUBECONFIG unset, no ~/.kube/config): Kubernetes access not checked",
                            Some("pass --kubeconfig (e.g. after `az aks get-credentials`)".into()),
                        );
                        return None;
                    }
                    match kube::config::Kubeconfig::read_from(&p) {
                        Ok(k) => (k, p.display().to_string()),
                        Err(e) => {
                            d.add(
                                "kubeconfig",
                                "Kubernetes",
                                Status::Fail,
                                format!("cannot read {}: {e}", p.display()),
                                None,
                            );
                            return None;
                        }
                    }
                }
                Err(e) => {
                    d.add(
                        "kubeconfig",
                        "Kubernetes",
                        Status::Fail,
                        format!("cannot read KUBECONFIG: {e}"),
                        None,
                    );
                    return None;
                }
            },
        };
        let contexts: Vec<String> = if args.all_contexts {
            kc.contexts.iter().map(|c| c.name.clone()).collect()
        } else if !args.contexts.is_empty() {
            args.contexts.clone()
        } else {
            kc.current_context.clone().into_iter().collect()
        };
        if contexts.is_empty() {
            d.add(
                "kubeconfig",
                "Kubernetes",
                Status::Fail,
                format!("{path} has no current context"),
                Some("name one with --context".into()),
            );
        }
        Some(KubeTargets {
            path,
            config: kc,
            contexts,
        })
    }

    fn server(&self, ctx: &str) -> Option<String> {
        let c = self
            .config
            .contexts
            .iter()
            .find(|c| c.name == ctx)?
            .context
            .as_ref()?;
        self.config
            .clusters
            .iter()
            .find(|x| x.name == c.cluster)?
            .cluster
            .as_ref()?
            .server
            .clone()
    }

    async fn client(&self, ctx: &str, loopback_only: bool) -> Result<kube::Client, String> {
        if !self.config.contexts.iter().any(|c| c.name == ctx) {
            return Err(format!("context {ctx:?} is not in {}", self.path));
        }
        if let Some(server) = self.server(ctx) {
            let u = Url::parse(&server).map_err(|e| format!("server {server:?}: {e}"))?;
            guard::check(&u, loopback_only).map_err(|e| e.to_string())?;
        }
        let opts = kube::config::KubeConfigOptions {
            context: Some(ctx.to_string()),
            ..Default::default()
        };
        let mut cfg = kube::Config::from_custom_kubeconfig(self.config.clone(), &opts)
            .await
            .map_err(|e| format!("kubeconfig context {ctx}: {e}"))?;
        cfg.connect_timeout = Some(Duration::from_secs(10));
        cfg.read_timeout = Some(Duration::from_secs(30));
        kube::Client::try_from(cfg).map_err(|e| format!("Kubernetes client for {ctx}: {e}"))
    }

    async fn cloud_config_secret(&self, ctx: &str, loopback_only: bool) -> Result<CloudConfig, String> {
        use k8s_openapi::api::core::v1::Secret as KSecret;
        let client = self.client(ctx, loopback_only).await?;
        let api: kube::Api<KSecret> = kube::Api::namespaced(client, "kube-system");
        let s = api.get("azure-cloud-provider").await.map_err(|e| {
            format!(
                "read Secret kube-system/azure-cloud-provider in {ctx}: {}",
                kube_error(&e)
            )
        })?;
        let v = serde_json::to_value(&s).map_err(|e| e.to_string())?;
        CloudConfig::from_secret(
            &v,
            &format!("Secret kube-system/azure-cloud-provider (context {ctx})"),
        )
        .map_err(|e| e.to_string())
    }
}

fn kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => {
            let mut parts = vec![other.to_string()];
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let t = s.to_string();
                if !parts.iter().any(|p| p.contains(&t)) {
                    parts.push(t);
                }
                src = s.source();
            }
            parts.join(": ")
        }
    }
}

async fn check_context(d: &mut Doctor, k: &KubeTargets, ctx: &str, loopback_only: bool) {
    use kube::api::ListParams;

    let server = k.server(ctx).unwrap_or_else(|| "unknown server".into());
    let section = format!("Kubernetes context {ctx} ({server})");
    let client = match k.client(ctx, loopback_only).await {
        Ok(c) => c,
        Err(e) => {
            d.add(
                format!("kubernetes:{ctx}:connect"),
                section,
                Status::Fail,
                e,
                None,
            );
            return;
        }
    };
    let lp = ListParams::default().limit(1);
    // The lists the audit reads (`kube::LISTS`).
    let mut results = Vec::new();
    for l in &crate::kube::LISTS {
        let r = crate::kube::list_page(&client, l.path, &lp)
            .await
            .map(|p| p.items.len());
        results.push((l.doctor.0, l.doctor.1, l.rbac, r));
    }
    for (id, what, (resource, ns), r) in results {
        let cid = format!("kubernetes:{ctx}:{id}");
        match r {
            Ok(_) => d.add(cid, section.clone(), Status::Ok, format!("list {what}: ok"), None),
            Err(kube::Error::Api(s)) if s.code == 403 => {
                d.add(
                    cid,
                    section.clone(),
                    Status::Fail,
                    format!("list {what}: forbidden ({})", s.message),
                    Some(format!(
                        "grant list: `kubectl create clusterrole azaudit-reader --verb=get,list --resource=services,nodes,endpointslices.discovery.k8s.io,pods` and `kubectl create clusterrolebinding azaudit-reader --clusterrole=azaudit-reader --user=<you>` (or check with `kubectl auth can-i list {resource}{ns}`)"
                    )),
                );
            }
            Err(kube::Error::Api(s)) if s.code == 401 => d.add(
                cid,
                section.clone(),
                Status::Fail,
                format!(
                    "list {what}: the API server rejects the kubeconfig's credentials ({})",
                    s.message
                ),
                Some(
                    "refresh them (AKS: `az aks get-credentials --resource-group <rg> --name <cluster>`)"
                        .into(),
                ),
            ),
            Err(e) => d.add(
                cid,
                section.clone(),
                Status::Fail,
                format!("list {what}: {}", kube_error(&e)),
                Some("check that the API server is reachable and the kubeconfig's CA is right".into()),
            ),
        }
    }
}

fn render_human(r: &Report, color: bool, out: &mut Vec<u8>) -> std::io::Result<()> {
    let paint = |s: Status| -> String {
        let (label, code) = match s {
            Status::Ok => ("ok  ", "32"),
            Status::Skip => ("skip", "2"),
            Status::Warn => ("warn", "33"),
            Status::Fail => ("FAIL", "31;1"),
        };
        if color {
            format!("\x1b[{code}m{label}\x1b[0m")
        } else {
            label.to_string()
        }
    };
    writeln!(out, "azaudit doctor")?;
    let mut section = "";
    for c in &r.checks {
        if c.section != section {
            section = &c.section;
            writeln!(out, "\n{section}")?;
        }
        writeln!(out, "  {}  {}", paint(c.status), c.message)?;
        if let Some(f) = &c.fix {
            writeln!(out, "        fix: {f}")?;
        }
    }
    let failed = r.checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = r.checks.iter().filter(|c| c.status == Status::Warn).count();
    writeln!(out)?;
    if failed == 0 {
        writeln!(out, "Result: ready to audit ({warned} warning(s)).")?;
    } else {
        writeln!(
            out,
            "Result: {failed} check(s) failed, {warned} warning(s): fix them before auditing (exit status 3)."
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_wildcards() {
        let reader = vec![serde_json::json!({"actions": ["*/read"], "notActions": []})];
        assert!(READ_ACTIONS.iter().all(|a| permitted(&reader, a)));
        assert!(!CLEANUP_ACTIONS.iter().any(|a| permitted(&reader, a)));
        let owner = vec![
            serde_json::json!({"actions": ["*"], "notActions": ["Microsoft.Network/publicIPAddresses/delete"]}),
        ];
        assert!(!permitted(&owner, "Microsoft.Network/publicIPAddresses/delete"));
        assert!(permitted(&owner, "microsoft.network/loadbalancers/write"));
        let net = vec![serde_json::json!({"actions": ["Microsoft.Network/*"]})];
        assert!(permitted(
            &net,
            "Microsoft.Network/networkSecurityGroups/securityRules/delete"
        ));
        assert!(!permitted(&net, "Microsoft.Compute/virtualMachines/read"));
        assert!(!permitted(&[], "Microsoft.Compute/virtualMachines/read"));
    }
}
