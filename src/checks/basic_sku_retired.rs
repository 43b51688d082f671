//! `basic-sku-retired`: a Basic SKU load balancer or public IP. Both were retired on 30 September
//! 2025 (learn.microsoft.com/azure/load-balancer/load-balancer-basic-upgrade-guidance;
//! MicrosoftDocs/azure-docs articles/virtual-network/ip-services/public-ip-addresses.md): no SLA,
//! no support, and Azure may stop running them. Source: the guide's Basic vs Standard tables.
//!
//! Only an explicit `sku.name: Basic` is reported: a resource without a SKU is not guessed at.
//! One finding per resource; the cluster is named when the LB is one it manages or the public IP
//! is one it owns or uses as a frontend.

use super::context::key;
use super::orphaned_public_ip::owning_clusters;
use super::{Context, Rule, RuleInfo};
use crate::findings::{Finding, Severity};
use crate::inventory::{LoadBalancer, PublicIp, Sku};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "basic-sku-retired",
        title: "Basic SKU load balancer or public IP (retired 30 September 2025)",
        default_severity: Severity::High,
        rationale: "Basic Load Balancer and Basic public IPs were retired on 30 September 2025: they run without SLA or support, lack availability zones and secure-by-default NSG handling, and can be stopped by Azure at any time.",
        remediation: "Upgrade to Standard: load balancers with Microsoft's script (Install-Module AzureBasicLoadBalancerUpgrade; Start-AzBasicLoadBalancerUpgrade -ResourceGroupName <rg> -BasicLoadBalancerName <lb>); public IPs in place once detached (az network public-ip update -g <rg> -n <pip> --sku Standard, after --allocation-method Static). Clusters: set loadBalancerSku to standard.",
        source: "Basic vs Standard tables (Azure Load Balancer SKUs)",
        cleanup: false,
    },
    check,
};

fn lb_cluster<'a>(ctx: &'a Context, lb: &LoadBalancer) -> Option<&'a str> {
    ctx.clusters
        .iter()
        .find(|cv| cv.managed_lbs.iter().any(|m| key(&m.id) == key(&lb.id)))
        .map(|cv| cv.name())
}

/// The cluster that owns the PIP by its tags, else the one whose managed LB uses it.
fn pip_cluster<'a>(ctx: &'a Context, pip: &PublicIp) -> Option<&'a str> {
    if let Some(cv) = owning_clusters(ctx, pip).first() {
        return Some(cv.name());
    }
    let k = key(&pip.id);
    ctx.clusters
        .iter()
        .find(|cv| {
            cv.managed_lbs.iter().any(|lb| {
                lb.frontends
                    .iter()
                    .any(|fe| fe.public_ip_id.as_deref().is_some_and(|p| key(p) == k))
            })
        })
        .map(|cv| cv.name())
}

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for lb in ctx.inv.load_balancers.iter().filter(|l| l.sku == Sku::Basic) {
        let cluster = lb_cluster(ctx, lb);
        let mut remediation = format!(
            "Install-Module AzureBasicLoadBalancerUpgrade; Start-AzBasicLoadBalancerUpgrade -ResourceGroupName {} -BasicLoadBalancerName {} (plan a maintenance window: frontends move to Standard public IPs)",
            lb.resource_group, lb.name
        );
        if let Some(c) = cluster {
            remediation.push_str(&format!(
                ". Cluster {c} manages this load balancer: set \"loadBalancerSku\": \"standard\" in its cloud config (AKS: az aks update -g <resource group> -n <cluster> --load-balancer-sku standard) so the provider does not recreate a Basic one"
            ));
        }
        let mut f = Finding::new(
            RULE.info.id,
            RULE.info.default_severity,
            &lb.id,
            format!(
                "Load balancer {} in {} is Basic SKU, retired on 30 September 2025: upgrade it to Standard.",
                lb.name, lb.resource_group
            ),
        )
        .subscription(&lb.subscription)
        .evidence("sku", "Basic")
        .evidence("kind", "load balancer")
        .evidence("frontends", lb.frontends.len())
        .evidence("retired_on", "2025-09-30")
        .remediation(remediation);
        if let Some(c) = cluster {
            f = f.cluster(c);
        }
        out.push(f);
    }
    for pip in ctx.inv.public_ips.iter().filter(|p| p.sku == Sku::Basic) {
        let cluster = pip_cluster(ctx, pip);
        let attached = pip.ip_configuration_id.as_deref();
        let remediation = format!(
            "{}az network public-ip update -g {rg} -n {n} --allocation-method Static; az network public-ip update -g {rg} -n {n} --sku Standard (the address is kept; Standard public IPs are closed to inbound traffic until an NSG allows it)",
            match attached {
                Some(cfg) => format!("Detach it from {cfg} first; then "),
                None => String::new(),
            },
            rg = pip.resource_group,
            n = pip.name
        );
        let mut f = Finding::new(
            RULE.info.id,
            RULE.info.default_severity,
            &pip.id,
            format!(
                "Public IP {} ({}) in {} is Basic SKU, retired on 30 September 2025: upgrade it to Standard.",
                pip.name,
                pip.ip_address.as_deref().unwrap_or("no address"),
                pip.resource_group
            ),
        )
        .subscription(&pip.subscription)
        .evidence("sku", "Basic")
        .evidence("kind", "public IP")
        .evidence("ip_address", &pip.ip_address)
        .evidence("ip_configuration", &pip.ip_configuration_id)
        .evidence("allocation", &pip.allocation)
        .evidence("retired_on", "2025-09-30")
        .remediation(remediation);
        if let Some(c) = cluster {
            f = f.cluster(c);
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::net_testutil::*;
    use super::*;
    use serde_json::{Value, json};

    fn pip(name: &str, sku: Option<&str>, tags: Value, attached: Option<&str>) -> Value {
        let mut v = json!({
            "id": arm_id(&format!("Microsoft.Network/publicIPAddresses/{name}")),
            "name": name, "type": "Microsoft.Network/publicIPAddresses", "location": "westeurope",
            "tags": tags,
            "properties": {"ipAddress": "20.1.2.3", "publicIPAllocationMethod": "Dynamic"}
        });
        if let Some(s) = sku {
            v["sku"] = json!({"name": s});
        }
        if let Some(a) = attached {
            v["properties"]["ipConfiguration"] = json!({"id": a});
        }
        v
    }

    fn lb(name: &str, sku: Option<&str>) -> Value {
        let mut v = json!({
            "id": arm_id(&format!("Microsoft.Network/loadBalancers/{name}")),
            "name": name, "type": "Microsoft.Network/loadBalancers", "location": "westeurope",
            "properties": {}
        });
        if let Some(s) = sku {
            v["sku"] = json!({"name": s});
        }
        v
    }

    fn run(files: Vec<(&str, Value)>) -> Vec<Finding> {
        let inv = inventory(files);
        let ctx = Context::new(&inv);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        out
    }

    #[test]
    fn basic_load_balancers_and_public_ips_and_only_those() {
        let out = run(vec![
            ("world.json", world_json("c1")),
            (
                "k8s/c1/services.json",
                k8s_list(vec![lb_service(
                    "a",
                    "b",
                    &[("TCP", 80, 30080)],
                    &["20.1.2.3"],
                    &[],
                    &[],
                )]),
            ),
            (
                "arm/lbs.json",
                page(vec![
                    lb("c1", Some("Basic")),
                    lb("other", Some("Standard")),
                    lb("nosku", None),
                    lb("gw", Some("Gateway")),
                ]),
            ),
            (
                "arm/pips.json",
                page(vec![
                    pip(
                        "bastion-pip",
                        Some("Basic"),
                        json!({}),
                        Some("/subscriptions/x/nic/ipConfigurations/ipconfig1"),
                    ),
                    pip(
                        "c1-a0000",
                        Some("basic"),
                        json!({"k8s-azure-service": "a/b", "k8s-azure-cluster-name": "c1"}),
                        None,
                    ),
                    pip("std-pip", Some("Standard"), json!({}), None),
                    pip("old-pip", None, json!({}), None),
                ]),
            ),
        ]);
        assert_eq!(
            pairs(&out),
            [
                (
                    "basic-sku-retired".to_string(),
                    arm_id("Microsoft.Network/loadBalancers/c1")
                ),
                (
                    "basic-sku-retired".to_string(),
                    arm_id("Microsoft.Network/publicIPAddresses/bastion-pip")
                ),
                (
                    "basic-sku-retired".to_string(),
                    arm_id("Microsoft.Network/publicIPAddresses/c1-a0000")
                ),
            ]
        );
        let lbf = out
            .iter()
            .find(|f| f.resource.ends_with("/c1"))
            .expect("lb finding");
        assert_eq!(
            lbf.cluster.as_deref(),
            Some("c1"),
            "a managed LB names its cluster"
        );
        assert!(lbf.remediation.contains("-BasicLoadBalancerName c1"));
        assert!(lbf.remediation.contains("loadBalancerSku"));
        let bastion = out
            .iter()
            .find(|f| f.resource.ends_with("bastion-pip"))
            .expect("pip");
        assert_eq!(bastion.cluster, None, "a PIP outside the clusters names none");
        assert!(bastion.remediation.starts_with("Detach it from"));
        assert!(
            bastion
                .remediation
                .contains("az network public-ip update -g rg-c1 -n bastion-pip --sku Standard")
        );
        let owned = out
            .iter()
            .find(|f| f.resource.ends_with("c1-a0000"))
            .expect("pip");
        assert_eq!(owned.cluster.as_deref(), Some("c1"));
        assert_eq!(owned.severity, Severity::High);
    }
}
