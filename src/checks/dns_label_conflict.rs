//! `dns-label-conflict`: a Service asks for a public IP DNS label
//! (`service.beta.kubernetes.io/azure-dns-label-name`) that it cannot get. A label is unique per
//! region (`<label>.<region>.cloudapp.azure.com`), so when a public IP of another Service — live,
//! or gone and leaking its PIP — already holds it, the provider's PIP update is refused and the
//! Service keeps no (or a stale) name. The resource is the Service that does **not** hold the
//! label; the holder is evidence. When nobody holds it and several Services want it, each is
//! reported (they contend; whichever the provider reconciles first wins).
//!
//! Only external Services (the label is a public IP setting). Needs the cluster's Services and the
//! PIP listing of its subscription complete.

use super::context::ClusterView;
use super::{Context, Rule, RuleInfo};
use crate::conventions::{
    self, TAG_DNS_LABEL_SERVICE, is_internal, pip_cluster_matches, pip_services, requested_dns_label,
    requested_pip_names, tag, wants_cloud_load_balancer,
};
use crate::findings::{Finding, Severity};
use crate::inventory::{ArmKind, PublicIp, Service};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "dns-label-conflict",
        title: "Service wants a DNS label another public IP holds",
        default_severity: Severity::Medium,
        rationale: "A public IP DNS label is unique in its region. When another Service's public IP (or a leaked one of a deleted Service) holds the label, the provider cannot set it on this Service's IP: the update fails on every reconcile and clients resolving the name reach the other address.",
        remediation: "Give one of the Services another label (kubectl -n <ns> annotate service <svc> service.beta.kubernetes.io/azure-dns-label-name=<unique> --overwrite), or free the label on the other public IP (az network public-ip update -g <rg> -n <pip> --dns-name \"\") if its Service is gone.",
        source: "Annotation 表: service.beta.kubernetes.io/azure-dns-label-name",
        cleanup: false,
    },
    check,
};

/// The cluster's region: cloud config `location`, else its managed load balancers'.
fn cluster_location(cv: &ClusterView) -> Option<String> {
    cv.config_str("location")
        .or_else(|| cv.managed_lbs.iter().find_map(|lb| lb.location.clone()))
        .map(|l| l.to_ascii_lowercase().replace(' ', ""))
}

/// `true` when `pip` is this Service's own public IP: tagged for it (DNS-label tag, or service
/// tag with a matching cluster tag), pinned by it (`azure-pip-name`), or holding its address.
fn is_own_pip(cv: &ClusterView, svc: &Service, pip: &PublicIp) -> bool {
    let key = svc.key();
    tag(&pip.tags, TAG_DNS_LABEL_SERVICE).is_some_and(|v| v.eq_ignore_ascii_case(&key))
        || (pip_services(pip).is_some_and(|s| s.iter().any(|x| x.eq_ignore_ascii_case(&key)))
            && pip_cluster_matches(pip, &cv.cluster.cluster_name_tag))
        || requested_pip_names(svc)
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&pip.name))
        || pip
            .ip_address
            .as_deref()
            .is_some_and(|ip| svc.ingress_ips.iter().any(|i| i == ip))
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for cv in &ctx.clusters {
        let Some(sub) = cv.subscription() else { continue };
        if !cv.services_complete()
            || !ctx.audited_subscription(sub)
            || !ctx.arm_complete(sub, ArmKind::PublicIpAddresses)
        {
            continue;
        }
        let region = cluster_location(cv);
        let same_region = |p: &PublicIp| match (&region, &p.location) {
            (Some(r), Some(l)) => l.to_ascii_lowercase().replace(' ', "") == *r,
            // Region unknown: stay within the cluster's subscription.
            _ => p.subscription.eq_ignore_ascii_case(sub),
        };
        let wanting: Vec<(&Service, &str)> = cv
            .lb_services
            .iter()
            .filter(|s| {
                wants_cloud_load_balancer(s) && !is_internal(s) && s.meta.deletion_timestamp.is_none()
            })
            .filter_map(|s| requested_dns_label(s).map(|l| (*s, l)))
            .collect();
        for (svc, label) in &wanting {
            let holders: Vec<&PublicIp> = ctx
                .inv
                .public_ips
                .iter()
                .filter(|p| {
                    p.dns_label
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(label))
                        && same_region(p)
                })
                .collect();
            if holders.iter().any(|p| is_own_pip(cv, svc, p)) {
                continue;
            }
            let ns = svc.meta.namespace.as_deref().unwrap_or("default");
            let name = &svc.meta.name;
            let rivals: Vec<String> = wanting
                .iter()
                .filter(|(s, l)| l.eq_ignore_ascii_case(label) && s.key() != svc.key())
                .map(|(s, _)| s.key())
                .collect();
            let (message, holder_evidence) = if let Some(h) = holders.first() {
                let owner = tag(&h.tags, TAG_DNS_LABEL_SERVICE).map(str::to_string);
                let owner_live = owner.as_deref().is_some_and(|o| {
                    ctx.clusters
                        .iter()
                        .any(|c| c.lb_services.iter().any(|s| s.key().eq_ignore_ascii_case(o)))
                });
                let whose = match (&owner, owner_live) {
                    (Some(o), true) => format!("Service {o}'s public IP {}", h.name),
                    (Some(o), false) => format!("public IP {} of the deleted Service {o}", h.name),
                    (None, _) => format!("public IP {}", h.name),
                };
                (
                    format!(
                        "Service {ns}/{name} in {} wants DNS label {label}, which {whose} already holds: its public IP cannot get the name.",
                        cv.name()
                    ),
                    Some((h.id.clone(), owner, owner_live)),
                )
            } else if !rivals.is_empty() {
                (
                    format!(
                        "Service {ns}/{name} in {} wants DNS label {label}, which {} also want{}: only one public IP can hold it.",
                        cv.name(),
                        rivals.join(", "),
                        if rivals.len() == 1 { "s" } else { "" }
                    ),
                    None,
                )
            } else {
                continue;
            };
            let mut f = Finding::new(
                RULE.info.id,
                RULE.info.default_severity,
                format!("k8s://{}/{ns}/services/{name}", cv.name()),
                message,
            )
            .cluster(cv.name())
            .subscription(sub)
            .evidence("dns_label", label)
            .evidence("other_services_wanting_it", &rivals)
            .evidence("region", &region);
            let mut remediation = format!(
                "kubectl -n {ns} annotate service {name} {}=<unique-label> --overwrite",
                conventions::ANN_DNS_LABEL
            );
            if let Some((id, owner, live)) = holder_evidence {
                f = f
                    .evidence("holder_public_ip", &id)
                    .evidence("holder_service", &owner)
                    .evidence("holder_service_exists", live);
                if !live {
                    let h = holders[0];
                    remediation = format!(
                        "The holder's Service is gone: free the label with az network public-ip update -g {} -n {} --dns-name \"\" (or delete that orphaned PIP), or {remediation}",
                        h.resource_group, h.name
                    );
                }
            }
            out.push(f.remediation(remediation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::*;
    use serde_json::json;

    fn pip_for(svc_key: &str, name: &str, ip: &str, label: Option<&str>) -> serde_json::Value {
        let mut tags = json!({"k8s-azure-service": svc_key, "k8s-azure-cluster-name": CLUSTER_TAG});
        if label.is_some() {
            tags["k8s-azure-dns-label-service"] = json!(svc_key);
        }
        let p = public_ip(SUB, RG, name, ip, tags);
        match label {
            Some(l) => with_dns_label(p, l),
            None => p,
        }
    }

    fn wants(ns: &str, name: &str, u: char, ip: &str, label: &str) -> serde_json::Value {
        let ingress: Vec<&str> = if ip.is_empty() { vec![] } else { vec![ip] };
        annotate(
            lb_service(ns, name, &uid(u), &[("TCP", 443, 30443)], &ingress),
            conventions::ANN_DNS_LABEL,
            label,
        )
    }

    fn audit(pips: Vec<serde_json::Value>, services: Vec<serde_json::Value>) -> Vec<Finding> {
        let lb = Lb::new(CLUSTER_TAG).pool(CLUSTER_TAG);
        let mut arm = pips;
        arm.push(lb.json());
        run(
            &WorldBuilder::new().arm(arm).k8s(CLUSTER, services).inventory(),
            check,
        )
    }

    #[test]
    fn the_service_that_does_not_hold_the_label_is_reported() {
        let out = audit(
            vec![
                pip_for(
                    "shop/shop-frontend",
                    "kubernetes-a1",
                    "51.105.228.19",
                    Some("contoso-shop"),
                ),
                pip_for(
                    "shop/shop-frontend-canary",
                    "kubernetes-a2",
                    "51.105.230.144",
                    None,
                ),
            ],
            vec![
                wants("shop", "shop-frontend", '1', "51.105.228.19", "contoso-shop"),
                wants(
                    "shop",
                    "shop-frontend-canary",
                    '2',
                    "51.105.230.144",
                    "contoso-shop",
                ),
            ],
        );
        assert_eq!(
            resources(&out),
            vec![svc_ref(CLUSTER, "shop", "shop-frontend-canary")]
        );
        assert_eq!(out[0].evidence["holder_service"], "shop/shop-frontend");
        assert_eq!(out[0].evidence["holder_service_exists"], true);
    }

    #[test]
    fn a_label_held_by_a_deleted_services_pip_blocks_recreation() {
        let out = audit(
            vec![pip_for(
                "web/old-site",
                "kubernetes-a9",
                "20.0.0.9",
                Some("contoso-www"),
            )],
            vec![wants("web", "new-site", '3', "", "contoso-www")],
        );
        assert_eq!(resources(&out), vec![svc_ref(CLUSTER, "web", "new-site")]);
        assert_eq!(out[0].evidence["holder_service_exists"], false);
        assert!(
            out[0].remediation.contains("--dns-name \"\""),
            "{}",
            out[0].remediation
        );
    }

    #[test]
    fn contenders_without_a_holder_are_each_reported() {
        let out = audit(
            vec![],
            vec![
                wants("a", "one", '4', "", "same"),
                wants("b", "two", '5', "", "same"),
            ],
        );
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn look_alikes_are_not_reported() {
        let mut other_region = with_dns_label(
            public_ip(SUB, "rg-us", "us-pip", "40.0.0.1", json!({})),
            "contoso-api",
        );
        other_region["location"] = json!("eastus");
        let internal = annotate(
            wants("ns", "ilb", '6', "10.0.0.4", "contoso-ilb"),
            conventions::ANN_INTERNAL,
            "true",
        );
        let out = audit(
            vec![
                // Holder is the Service's own PIP (found by address, legacy tag or BYO name).
                with_dns_label(public_ip(SUB, RG, "byo", "20.0.0.1", json!({})), "contoso-byo"),
                pip_for(
                    "shop/shop-frontend",
                    "kubernetes-a1",
                    "51.105.228.19",
                    Some("contoso-shop"),
                ),
                other_region,
            ],
            vec![
                wants("shop", "shop-frontend", '1', "51.105.228.19", "contoso-shop"),
                annotate(
                    wants("ns", "byo", '7', "", "contoso-byo"),
                    conventions::ANN_PIP_NAME,
                    "byo",
                ),
                // The same label in another region is another name.
                wants("ns", "api", '8', "20.0.0.8", "contoso-api"),
                // A lone Service with a label nobody holds yet (it will get it).
                wants("ns", "fresh", '9', "", "contoso-fresh"),
                // The label is a public IP setting: internal Services are not judged.
                internal.clone(),
                {
                    let mut i2 = internal;
                    i2["metadata"]["name"] = json!("ilb2");
                    i2["metadata"]["uid"] = json!(uid('a'));
                    i2
                },
            ],
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn incomplete_service_listing_emits_nothing() {
        let inv = WorldBuilder::new()
            .k8s(
                CLUSTER,
                vec![
                    wants("a", "one", '4', "", "same"),
                    wants("b", "two", '5', "", "same"),
                ],
            )
            .gap(json!({"scope": "kubernetes", "cluster": CLUSTER, "kind": "services", "cause": "403"}))
            .inventory();
        assert!(run(&inv, check).is_empty());
    }
}
