//! `cloud-config-invalid`: problems in a cluster's cloud-provider config (`azure.json` or the
//! `kube-system/azure-cloud-provider` Secret), read with the provider's own rules (keys
//! case-insensitive, `crate::cloud_config`). Sources: the guide's "MSI 无法使用" (managed identity
//! options not parsed) and "Azure ARM API 调用请求过多" (instance metadata and rate limiting off
//! multiply ARM calls); domain.md §7.4.

use serde::Serialize;

use super::{Context, Rule, RuleInfo};
use crate::cloud_config::{CloudConfig, ProblemLevel};
use crate::findings::{Finding, Severity};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "cloud-config-invalid",
        title: "Cloud provider config with errors or risky settings",
        default_severity: Severity::High,
        rationale: "The cloud provider reads this file at start: a value it cannot parse or conflicting credentials stop it from reconciling load balancers (Services stay <pending>); instance metadata or rate limiting turned off multiplies its ARM calls until ARM throttles the whole subscription.",
        remediation: "Fix the listed keys in the config (kubectl -n kube-system edit secret azure-cloud-provider, or /etc/kubernetes/azure.json on the nodes), then restart the cloud-controller-manager.",
        source: "MSI 无法使用 / Azure ARM API 调用请求过多",
        cleanup: false,
    },
    check,
};

/// A placeholder secret (`msi` on AKS) is not a secret.
const PLACEHOLDERS: &[&str] = &["", "msi"];

#[derive(Serialize)]
struct Problem {
    path: String,
    severity: Severity,
    message: String,
}

fn set(v: &Option<impl AsRef<str>>) -> bool {
    v.as_ref().is_some_and(|s| {
        !PLACEHOLDERS
            .iter()
            .any(|p| s.as_ref().trim().eq_ignore_ascii_case(p))
    })
}

/// Every problem of one config, with its severity: parse and credential problems are high,
/// advice medium.
fn problems(cc: &CloudConfig, file_mode: Option<u32>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |path: &str, severity, message: String| {
        out.push(Problem {
            path: path.to_string(),
            severity,
            message,
        })
    };
    for p in &cc.problems {
        match p.level {
            ProblemLevel::Error => add(&p.path, Severity::High, p.message.clone()),
            ProblemLevel::Warning => add(&p.path, Severity::Medium, p.message.clone()),
            ProblemLevel::Info => {}
        }
    }
    let s = &cc.settings;
    for (key, v) in [
        ("tenantId", &s.tenant_id),
        ("subscriptionId", &s.subscription_id),
        ("resourceGroup", &s.resource_group),
    ] {
        if !set(v) {
            add(
                &format!("$.{key}"),
                Severity::High,
                format!(
                    "{key} is missing: the provider cannot authenticate or find the cluster's resources without it"
                ),
            );
        }
    }
    let secret = s.aad_client_secret.as_ref().is_some_and(|x| {
        !PLACEHOLDERS
            .iter()
            .any(|p| x.expose().trim().eq_ignore_ascii_case(p))
    });
    let cert = set(&s.aad_client_cert_path);
    let mi = s.use_managed_identity_extension == Some(true);
    let wi = s.use_federated_workload_identity_extension == Some(true) || set(&s.aad_federated_token_file);
    if mi && secret {
        add(
            "$.useManagedIdentityExtension",
            Severity::High,
            "useManagedIdentityExtension is true and aadClientSecret is set too: the provider uses the managed identity and ignores the secret, so whoever maintains the secret is misled; remove one (for managed identity: delete aadClientSecret, set aadClientId to \"msi\" or remove it)".into(),
        );
    }
    if mi && cert {
        add(
            "$.aadClientCertPath",
            Severity::Medium,
            "aadClientCertPath is set but useManagedIdentityExtension wins: the certificate is never used"
                .into(),
        );
    }
    if wi && mi {
        add("$.useFederatedWorkloadIdentityExtension", Severity::Medium, "workload identity and managed identity are both configured: workload identity wins, the managed identity is unused".into());
    }
    if !mi && !wi && !secret && !cert && !set(&s.aad_msi_data_plane_identity_path) {
        add("$.aadClientId", Severity::High, "no credential is configured (no aadClientSecret, aadClientCertPath, managed identity or workload identity): the provider cannot call ARM".into());
    }
    if s.load_balancer_sku
        .as_deref()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("basic"))
    {
        add(
            "$.loadBalancerSku",
            Severity::Medium,
            "loadBalancerSku is basic: Basic load balancers were retired on 30 September 2025; use standard"
                .into(),
        );
    }
    if s.use_instance_metadata == Some(false) {
        add("$.useInstanceMetadata", Severity::Medium, "useInstanceMetadata is false: every node lookup becomes an ARM call instead of an instance metadata read; set it to true".into());
    }
    if cc.rate_limit.enabled == Some(false) {
        add("$.cloudProviderRateLimit", Severity::Medium, "cloudProviderRateLimit is false: the provider sends ARM requests without client-side rate limiting and can exhaust the subscription's read budget; set it to true".into());
    }
    if let Some(mode) = file_mode
        && mode & 0o077 != 0
        && (secret
            || s.aad_client_cert_password
                .as_ref()
                .is_some_and(|p| !p.expose().is_empty()))
    {
        add(
            "$",
            Severity::High,
            format!(
                "the file holds a secret and is readable by group or others (mode {mode:o}): chmod 600 it"
            ),
        );
    }
    out
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        let Some(src) = &cv.cluster.cloud_config else {
            continue;
        };
        let (found, parse_error) = match CloudConfig::parse(&src.text, &src.reference) {
            Ok(cc) => (problems(&cc, src.file_mode), None),
            Err(e) => (
                vec![Problem {
                    path: "$".into(),
                    severity: Severity::High,
                    message: e.to_string(),
                }],
                Some(e.to_string()),
            ),
        };
        let Some(worst) = found.iter().map(|p| p.severity).max() else {
            continue;
        };
        let summary = if parse_error.is_some() {
            "cannot be parsed".to_string()
        } else {
            format!(
                "has {} problem(s): {}",
                found.len(),
                found
                    .iter()
                    .map(|p| p.path.trim_start_matches("$."))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push(
            Finding::new(
                RULE.info.id,
                worst,
                &src.reference,
                format!("The cloud provider config of cluster {} {summary}.", cv.name()),
            )
            .cluster(cv.name())
            .subscription(cv.subscription().unwrap_or_default())
            .evidence("problems", &found),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, mode: Option<u32>) -> Vec<(String, Severity)> {
        let cc = CloudConfig::parse(text, "test").unwrap();
        problems(&cc, mode)
            .into_iter()
            .map(|p| (p.path, p.severity))
            .collect()
    }

    const OK: &str = r#"{"cloud":"AzurePublicCloud","tenantId":"t","subscriptionId":"s","resourceGroup":"rg",
        "aadClientId":"c","aadClientSecret":"<redacted>","useInstanceMetadata":true,"cloudProviderRateLimit":true,"loadBalancerSku":"standard"}"#;

    #[test]
    fn a_healthy_config_has_no_problem() {
        assert_eq!(run(OK, Some(0o600)), vec![]);
        // AKS: managed identity with the "msi" placeholders, keys in other capitals.
        let aks = r#"{"TenantID":"t","subscriptionID":"s","resourceGroup":"MC_x","useManagedIdentityExtension":true,
            "aadClientId":"msi","aadClientSecret":"msi","userAssignedIdentityID":"u"}"#;
        assert_eq!(run(aks, None), vec![]);
    }

    #[test]
    fn finds_each_problem() {
        let p = run(
            &OK.replace("\"useInstanceMetadata\":true", "\"useInstanceMetadata\":false"),
            None,
        );
        assert_eq!(p, vec![("$.useInstanceMetadata".into(), Severity::Medium)]);
        let p = run(
            &OK.replace(
                "\"cloudProviderRateLimit\":true",
                "\"cloudProviderRateLimit\":false",
            ),
            None,
        );
        assert_eq!(p, vec![("$.cloudProviderRateLimit".into(), Severity::Medium)]);
        let p = run(&OK.replace("\"standard\"", "\"basic\""), None);
        assert_eq!(p, vec![("$.loadBalancerSku".into(), Severity::Medium)]);
        let p = run(
            &OK.replace(
                "\"aadClientId\"",
                "\"useManagedIdentityExtension\":true,\"aadClientId\"",
            ),
            None,
        );
        assert_eq!(p, vec![("$.useManagedIdentityExtension".into(), Severity::High)]);
        let p = run(&OK.replace("\"tenantId\":\"t\",", ""), None);
        assert_eq!(p, vec![("$.tenantId".into(), Severity::High)]);
        let p = run(OK, Some(0o644));
        assert_eq!(p, vec![("$".into(), Severity::High)]);
        let p = run(&OK.replace("\"aadClientSecret\":\"<redacted>\",", ""), None);
        assert_eq!(p, vec![("$.aadClientId".into(), Severity::High)]);
    }

    #[test]
    fn unparsable_config_is_one_high_finding() {
        let inv = crate::inventory::Inventory {
            clusters: vec![crate::inventory::Cluster {
                name: "c1".into(),
                cluster_name_tag: "kubernetes".into(),
                subscription_id: None,
                resource_group: None,
                cloud_config: Some(crate::inventory::CloudConfigSource {
                    reference: "k8s://c1/kube-system/secrets/azure-cloud-provider".into(),
                    text: "{not json".into(),
                    file_mode: None,
                }),
                services: vec![],
                nodes: vec![],
                endpoint_slices: vec![],
                pods: vec![],
                incomplete: vec![],
            }],
            ..Default::default()
        };
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::High);
        assert_eq!(
            out[0].resource,
            "k8s://c1/kube-system/secrets/azure-cloud-provider"
        );
    }
}
