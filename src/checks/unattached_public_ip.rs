//! `unattached-public-ip`: a public IP nobody uses and nobody claims. Never cleaned up by default:
//! with no ownership tags it was created by a person, not by the cloud provider.

use super::{Context, Rule, RuleInfo};
use crate::conventions::pip_services;
use crate::findings::{Finding, Severity};

pub const RULE: Rule = Rule {
    info: RuleInfo {
        id: "unattached-public-ip",
        title: "Public IP attached to nothing, owner unknown",
        default_severity: Severity::Low,
        rationale: "An unattached public IP with no ownership tags is billed and counts against quota; no Service asks for it, so it is probably forgotten. It was created outside the cloud provider, so only its owner can decide.",
        remediation: "Find the owner (az network public-ip show --ids <id> --query tags; the activity log names the creator). Delete it if unneeded, or tag it with its owner.",
        source: "Service 删除后 Azure 公网 IP 未自动删除 (user-created addresses)",
        cleanup: false,
    },
    check,
};

fn check(ctx: &Context, out: &mut Vec<Finding>) {
    // "Not requested by any Service" needs every cluster's Service listing.
    if !ctx.all_services_complete() {
        return;
    }
    for pip in &ctx.inv.public_ips {
        if pip.ip_configuration_id.is_some()
            || pip.nat_gateway_id.is_some()
            || pip.prefix_id.is_some()
            || pip_services(pip).is_some()
        {
            continue;
        }
        if !ctx.services_requesting_pip(pip).is_empty() {
            continue;
        }
        out.push(
            Finding::new(
                RULE.info.id,
                RULE.info.default_severity,
                &pip.id,
                format!(
                    "Public IP {} ({}) is attached to nothing, has no ownership tags and no audited Service asks for it.",
                    pip.name,
                    pip.ip_address.as_deref().unwrap_or("no address")
                ),
            )
            .subscription(&pip.subscription)
            .evidence("tags", &pip.tags)
            .evidence("ip_address", &pip.ip_address)
            .evidence("sku", &pip.sku)
            .evidence("allocation", &pip.allocation),
        );
    }
}
