//! The cleanup plan (`azaudit cleanup plan`): from an audit's cleanup-eligible findings to an
//! ordered list of actions, each with the ETag and digest it was planned against, the finding
//! and evidence that justify it, and its preconditions in words.
//!
//! Safety rails, on top of the rules (which already refuse to report anything a live Service
//! owns or asks for):
//! - a public IP is planned for deletion only when it carries the cloud provider's service tag
//!   (`k8s-azure-service`, else the legacy `service`: `serviceOwnsPublicIP`, domain.md §2.3),
//!   is not on a NAT gateway or from a public IP prefix, and no Service of any audited cluster
//!   asks for it by address (`loadBalancerIP`, `azure-load-balancer-ipv4/-ipv6`), by name
//!   (`azure-pip-name(-ipv6)`) or holds it as ingress. An untagged (user-created) address is only
//!   planned when `--include-user-created <id>` names it *and* it is reported as
//!   `unattached-public-ip`; the other rails still apply;
//! - a public IP still attached to something this plan does not remove is not planned;
//! - a frontend that an inbound NAT or outbound rule uses, and a probe a remaining rule uses,
//!   are not planned (ARM would refuse the PUT);
//! - findings younger than `--min-age` (state file) arrive here downgraded, not eligible, and are
//!   listed under `not_planned` with the reason.
//!
//! Order: load-balancing rules, then probes, then NSG edits, then frontends (with their rules
//! and probes), then public IPs; dependencies (a public IP after the frontend that holds it, a
//! probe after the rules that use it) always come first.
//!
//! Pure: no I/O. The plan's JSON is versioned (`plan_version`); fields are only ever added.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use azaudit_world::{ArmResource, World, id_key};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::edit::{self, Removals};
use crate::checks::Context;
use crate::conventions::{TAG_SERVICE, pip_services, tag};
use crate::findings::Finding;
use crate::inventory::{Inventory, LoadBalancer, PublicIp};
use crate::report::AuditResult;

/// The plan format version this azaudit writes and reads.
pub const PLAN_VERSION: u32 = 1;

/// Rules whose findings cleanup acts on.
pub const CLEANUP_RULES: &[&str] = &[
    "orphaned-public-ip",
    "orphaned-lb-frontend",
    "orphaned-lb-rule",
    "orphaned-nsg-rule",
];
/// The rule whose findings only an explicit `--include-user-created <id>` makes actionable.
pub const USER_CREATED_RULE: &str = "unattached-public-ip";

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    DeletePublicIp,
    RemoveFrontend,
    DeleteLbRule,
    DeleteProbe,
    DeleteNsgRule,
    RemoveNsgDestinations,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::DeletePublicIp => "delete-public-ip",
            ActionKind::RemoveFrontend => "remove-frontend",
            ActionKind::DeleteLbRule => "delete-lb-rule",
            ActionKind::DeleteProbe => "delete-probe",
            ActionKind::DeleteNsgRule => "delete-nsg-rule",
            ActionKind::RemoveNsgDestinations => "remove-nsg-destinations",
        }
    }

    /// Ordering phase: rules, probes, NSG edits, frontends, public IPs.
    fn phase(self) -> u8 {
        match self {
            ActionKind::DeleteLbRule => 1,
            ActionKind::DeleteProbe => 2,
            ActionKind::DeleteNsgRule | ActionKind::RemoveNsgDestinations => 3,
            ActionKind::RemoveFrontend => 4,
            ActionKind::DeletePublicIp => 5,
        }
    }

    /// Actions that PUT their parent (a load balancer or NSG) instead of deleting a resource.
    pub fn edits_parent(self) -> bool {
        self != ActionKind::DeletePublicIp
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The finding an action rests on, as the audit reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFinding {
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub evidence: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
}

/// A load balancer or NSG that actions edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parent {
    pub id: String,
    pub subscription: String,
    /// ETag as audited.
    pub etag: Option<String>,
    /// [`edit::parent_digest`] of the parent as audited, minus `removes` and
    /// `removes_destinations`: equal later means "changed by nothing but this plan".
    pub digest: String,
    /// Every sub-resource this plan removes from the parent.
    pub removes: Vec<String>,
    /// NSG rule id → destinations this plan removes from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removes_destinations: BTreeMap<String, Vec<String>>,
}

impl Parent {
    /// What [`Parent::digest`] assumes removed.
    pub fn removals(&self) -> Removals {
        let mut r = Removals::default();
        for id in &self.removes {
            r.item(id);
        }
        for (rule, d) in &self.removes_destinations {
            r.destinations(rule, d.iter().cloned());
        }
        r
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Stable: a hash of kind and resource (lower-cased).
    pub id: String,
    /// 1-based position; apply runs actions in this order.
    pub order: u32,
    pub kind: ActionKind,
    /// The public IP, frontend, rule, probe or NSG rule the action is about.
    pub resource: String,
    pub subscription: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The resource's ETag as audited (sub-resources carry their parent's).
    pub etag: Option<String>,
    /// For edits: the load balancer or NSG to PUT (see `parents`), guarded by its ETag/digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For public IPs: [`edit::pip_digest`] as audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// What the PUT removes from the parent (remove-frontend: the frontend, its rules and probes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removes: Vec<String>,
    /// remove-nsg-destinations: the stale destinations to take out of the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
    /// Ids of actions that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// `--include-user-created` named this (untagged) public IP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_created: bool,
    pub finding: PlannedFinding,
    /// What apply checks before writing, in words.
    pub preconditions: Vec<String>,
}

impl Action {
    /// The resource's short name (last id segment).
    pub fn name(&self) -> &str {
        self.resource.rsplit('/').next().unwrap_or(&self.resource)
    }
}

/// A cleanup-eligible (or opted-in) finding that is not in the plan, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotPlanned {
    pub rule: String,
    pub resource: String,
    pub reason: String,
}

/// How the audit behind the plan saw a cluster; apply re-checks with the same view unless the
/// config file (`--config`) describes the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCluster {
    pub name: String,
    pub cluster_name_tag: Option<String>,
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
}

/// A cleanup plan (`plan_version` 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_version: u32,
    /// Identifies this plan in apply logs: a hash of `created_at` and the action ids.
    pub plan_id: String,
    pub created_at: String,
    /// `azaudit <version>`.
    pub generator: String,
    /// `live` or `snapshot:<dir>`.
    pub source: String,
    pub tenant_id: Option<String>,
    pub subscriptions: Vec<String>,
    pub clusters: Vec<String>,
    #[serde(default)]
    pub cluster_details: Vec<PlanCluster>,
    /// `--min-age` as given.
    pub min_age: Option<String>,
    pub include_user_created: Vec<String>,
    /// `false` when the audit behind the plan had gaps (its findings are complete where it saw).
    pub audit_complete: bool,
    pub parents: Vec<Parent>,
    pub actions: Vec<Action>,
    pub not_planned: Vec<NotPlanned>,
}

impl Plan {
    pub fn parent(&self, id: &str) -> Option<&Parent> {
        self.parents.iter().find(|p| id_key(&p.id) == id_key(id))
    }

    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.id == id)
    }

    /// Reads a plan, refusing other versions.
    pub fn from_json(bytes: &[u8]) -> Result<Plan, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
        match v.get("plan_version").and_then(Value::as_u64) {
            Some(n) if n == u64::from(PLAN_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "plan_version {n}; this azaudit reads version {PLAN_VERSION}: make the plan again with this azaudit"
                ));
            }
            None => return Err("no plan_version: this is not an azaudit cleanup plan".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("not a valid plan ({e})"))
    }
}

/// Choices of `azaudit cleanup plan`.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Untagged public IPs (ids) the user explicitly wants deleted.
    pub include_user_created: Vec<String>,
    /// `--min-age` (with the state file): also applied to opted-in user-created addresses.
    pub min_age: Option<Duration>,
    /// `live` or `snapshot:<dir>`.
    pub source: String,
}

fn hash16(s: &str) -> String {
    edit::sha256_hex(s)[..16].to_string()
}

/// The stable id of an action.
pub fn action_id(kind: ActionKind, resource: &str) -> String {
    hash16(&format!("{}|{}", kind.as_str(), id_key(resource)))
}

fn short(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// Why deleting this public IP could hurt someone, if anything. `opt_in`: the user named this
/// untagged address; `released`: attachments this plan itself removes first.
pub fn pip_blockers(
    ctx: &Context,
    pip: &PublicIp,
    opt_in: bool,
    released: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if pip_services(pip).is_none() && !opt_in {
        out.push(format!(
            "it has no {} tag, so a person created it (user-created addresses are only deleted when --include-user-created names them)",
            TAG_SERVICE.0
        ));
    }
    if let Some(n) = &pip.nat_gateway_id {
        out.push(format!("it is on NAT gateway {n}"));
    }
    if let Some(p) = &pip.prefix_id {
        out.push(format!("it was allocated from public IP prefix {p}"));
    }
    let wanted = ctx.services_requesting_pip(pip);
    if !wanted.is_empty() {
        out.push(format!(
            "Service(s) {} ask for it (by address, azure-pip-name, or as their ingress IP)",
            wanted.join(", ")
        ));
    }
    if let Some(cfg) = &pip.ip_configuration_id
        && !released(cfg)
    {
        out.push(format!("it is still attached to {cfg}"));
    }
    out
}

/// Rules and probes a frontend removal takes with it, or why the frontend cannot go.
struct FrontendRemoval {
    rules: Vec<String>,
    probes: Vec<String>,
}

/// Ids of raw sub-resources (inbound NAT rules/pools, outbound rules) that reference `target`.
fn raw_users(lb_raw: &Value, lb_id: &str, target: &str, collections: &[&str]) -> Vec<String> {
    let want = id_key(target);
    let mut out = Vec::new();
    for coll in collections {
        for item in edit::items(lb_raw, coll) {
            let mut refs = Vec::new();
            collect_ids(item.get("properties").unwrap_or(&Value::Null), &mut refs);
            if refs.iter().any(|r| id_key(r) == want) {
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                out.push(format!("{lb_id}/{coll}/{name}"));
            }
        }
    }
    out
}

fn collect_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("id", Value::String(s)) => out.push(s.clone()),
                    _ => collect_ids(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ids(x, out)),
        _ => {}
    }
}

fn frontend_removal(
    lb: &LoadBalancer,
    lb_raw: Option<&Value>,
    fe_id: &str,
) -> Result<FrontendRemoval, String> {
    let fe = lb
        .frontends
        .iter()
        .find(|f| id_key(&f.id) == id_key(fe_id))
        .ok_or_else(|| format!("frontend {fe_id} is not in load balancer {}", lb.id))?;
    if let Some(raw) = lb_raw {
        let users = raw_users(
            raw,
            &lb.id,
            &fe.id,
            &["inboundNatRules", "inboundNatPools", "outboundRules"],
        );
        if !users.is_empty() {
            return Err(format!(
                "inbound NAT or outbound rules use it ({}); remove those by hand first",
                users.join(", ")
            ));
        }
    }
    // The rules and probes named after it, or pointing at it (the rule's own evidence).
    let rules: Vec<&crate::inventory::LbRule> = lb
        .rules
        .iter()
        .filter(|r| {
            r.frontend_id
                .as_deref()
                .is_some_and(|id| id_key(id) == id_key(&fe.id))
                || r.name.contains(&fe.name)
        })
        .collect();
    let rule_keys: BTreeSet<String> = rules.iter().map(|r| id_key(&r.id)).collect();
    let probes: Vec<String> = lb
        .probes
        .iter()
        .filter(|p| p.name.contains(&fe.name))
        // A probe another (remaining) rule still uses stays.
        .filter(|p| {
            !lb.rules.iter().any(|r| {
                !rule_keys.contains(&id_key(&r.id))
                    && r.probe_id
                        .as_deref()
                        .is_some_and(|pid| id_key(pid) == id_key(&p.id))
            })
        })
        .map(|p| p.id.clone())
        .collect();
    Ok(FrontendRemoval {
        rules: rules.iter().map(|r| r.id.clone()).collect(),
        probes,
    })
}

/// One candidate before ordering.
struct Draft {
    action: Action,
    /// Sub-resource this draft removes, for dependency wiring.
    parent_removals: Option<(String, Removals)>,
}

fn planned_finding(f: &Finding) -> PlannedFinding {
    PlannedFinding {
        rule: f.rule.to_string(),
        severity: f.severity.as_str().to_string(),
        message: f.message.clone(),
        evidence: f.evidence.clone(),
        first_seen: f.first_seen.clone(),
    }
}

fn raw_etag(v: &Value) -> Option<String> {
    v.get("etag").and_then(Value::as_str).map(str::to_string)
}

/// Builds the plan from an audit (`result`, with `--min-age` already applied by the state merge)
/// of the `world` it was made from.
pub fn build(world: &World, inv: &Inventory, result: &AuditResult, opts: &PlanOptions) -> Plan {
    let ctx = Context::new(inv);
    let pips: HashMap<String, &PublicIp> = inv.public_ips.iter().map(|p| (id_key(&p.id), p)).collect();
    let lbs: HashMap<String, &LoadBalancer> = inv.load_balancers.iter().map(|l| (id_key(&l.id), l)).collect();
    let raw = |id: &str| world.get(id).map(ArmResource::value);
    let opt_in: BTreeSet<String> = opts.include_user_created.iter().map(|s| id_key(s)).collect();
    let mut not_planned = Vec::new();
    let mut drafts: Vec<Draft> = Vec::new();
    let mut opted_in_seen = BTreeSet::new();

    let now = time::OffsetDateTime::parse(
        &result.generated_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok();
    let old_enough = |f: &Finding| -> Result<(), String> {
        let Some(min) = opts.min_age else { return Ok(()) };
        let first = result
            .history
            .as_ref()
            .and_then(|h| h.seen.get(&f.key()))
            .map(|s| s.first_seen.clone())
            .or_else(|| f.first_seen.clone());
        let age = match (
            first.as_deref().and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            }),
            now,
        ) {
            (Some(t), Some(n)) => n - t,
            _ => time::Duration::ZERO,
        };
        if age < time::Duration::try_from(min).unwrap_or(time::Duration::MAX) {
            Err(format!(
                "younger than --min-age {} (first seen {})",
                crate::state::format_age(min),
                first.unwrap_or_else(|| "now".into())
            ))
        } else {
            Ok(())
        }
    };

    for f in &result.findings {
        let cleanup_rule = CLEANUP_RULES.contains(&f.rule);
        let user_created = f.rule == USER_CREATED_RULE && opt_in.contains(&id_key(&f.resource));
        if !cleanup_rule && !user_created {
            continue;
        }
        let skip = |reason: String| NotPlanned {
            rule: f.rule.to_string(),
            resource: f.resource.clone(),
            reason,
        };
        if user_created {
            opted_in_seen.insert(id_key(&f.resource));
            if let Err(r) = old_enough(f) {
                not_planned.push(skip(r));
                continue;
            }
        } else if !f.cleanup_eligible {
            let reason = match old_enough(f) {
                Err(r) => r,
                Ok(()) => "not cleanup-eligible in this audit".to_string(),
            };
            not_planned.push(skip(reason));
            continue;
        }
        let subscription = f.subscription.clone().unwrap_or_default();
        let base = |kind: ActionKind, resource: &str, etag: Option<String>| Action {
            id: action_id(kind, resource),
            order: 0,
            kind,
            resource: resource.to_string(),
            subscription: subscription.clone(),
            cluster: f.cluster.clone(),
            etag,
            parent: None,
            digest: None,
            removes: Vec::new(),
            destinations: Vec::new(),
            depends_on: Vec::new(),
            user_created,
            finding: planned_finding(f),
            preconditions: Vec::new(),
        };
        match f.rule {
            "orphaned-public-ip" | USER_CREATED_RULE => {
                let Some(pip) = pips.get(&id_key(&f.resource)) else {
                    not_planned.push(skip("the public IP is not in the inventory".into()));
                    continue;
                };
                let Some(v) = &raw(&pip.id) else {
                    not_planned.push(skip(
                        "the public IP's ARM document is not in the audit's data".into(),
                    ));
                    continue;
                };
                let mut a = base(
                    ActionKind::DeletePublicIp,
                    &pip.id,
                    pip.etag.clone().or_else(|| raw_etag(v)),
                );
                a.digest = Some(edit::pip_digest(v));
                drafts.push(Draft {
                    action: a,
                    parent_removals: None,
                });
            }
            "orphaned-lb-frontend" => {
                let Some(parent_id) = edit::parent_of(&f.resource) else {
                    not_planned.push(skip("not a load balancer frontend id".into()));
                    continue;
                };
                let (Some(lb), Some(lb_raw)) = (lbs.get(&id_key(&parent_id)), &raw(&parent_id)) else {
                    not_planned.push(skip("its load balancer is not in the audit's data".into()));
                    continue;
                };
                match frontend_removal(lb, Some(lb_raw), &f.resource) {
                    Err(r) => not_planned.push(skip(r)),
                    Ok(fr) => {
                        let fe_raw = edit::find_item(lb_raw, &lb.id, &f.resource);
                        let mut a = base(
                            ActionKind::RemoveFrontend,
                            &f.resource,
                            fe_raw.and_then(raw_etag).or_else(|| lb.etag.clone()),
                        );
                        a.parent = Some(lb.id.clone());
                        a.removes = std::iter::once(f.resource.clone())
                            .chain(fr.rules)
                            .chain(fr.probes)
                            .collect();
                        let mut r = Removals::default();
                        a.removes.iter().for_each(|id| r.item(id));
                        drafts.push(Draft {
                            action: a,
                            parent_removals: Some((lb.id.clone(), r)),
                        });
                    }
                }
            }
            "orphaned-lb-rule" => {
                let Some(parent_id) = edit::parent_of(&f.resource) else {
                    not_planned.push(skip("not a load balancer rule or probe id".into()));
                    continue;
                };
                let (Some(lb), Some(lb_raw)) = (lbs.get(&id_key(&parent_id)), &raw(&parent_id)) else {
                    not_planned.push(skip("its load balancer is not in the audit's data".into()));
                    continue;
                };
                let is_probe = f.evidence.get("kind").and_then(Value::as_str) == Some("probe")
                    || edit::collection_and_name(&f.resource)
                        .is_some_and(|(c, _)| c.eq_ignore_ascii_case("probes"));
                let kind = if is_probe {
                    ActionKind::DeleteProbe
                } else {
                    ActionKind::DeleteLbRule
                };
                if is_probe {
                    let users = raw_users(
                        lb_raw,
                        &lb.id,
                        &f.resource,
                        &["inboundNatRules", "inboundNatPools"],
                    );
                    if !users.is_empty() {
                        not_planned.push(skip(format!("inbound NAT rules use it ({})", users.join(", "))));
                        continue;
                    }
                }
                let item = edit::find_item(lb_raw, &lb.id, &f.resource);
                let mut a = base(
                    kind,
                    &f.resource,
                    item.and_then(raw_etag).or_else(|| lb.etag.clone()),
                );
                a.parent = Some(lb.id.clone());
                a.removes = vec![f.resource.clone()];
                let mut r = Removals::default();
                r.item(&f.resource);
                drafts.push(Draft {
                    action: a,
                    parent_removals: Some((lb.id.clone(), r)),
                });
            }
            "orphaned-nsg-rule" => {
                let nsg_id = f
                    .evidence
                    .get("nsg")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| edit::parent_of(&f.resource));
                let Some(nsg_id) = nsg_id else {
                    not_planned.push(skip("not an NSG rule id".into()));
                    continue;
                };
                let Some(nsg_raw) = &raw(&nsg_id) else {
                    not_planned.push(skip("its NSG is not in the audit's data".into()));
                    continue;
                };
                let item = edit::find_item(nsg_raw, &nsg_id, &f.resource);
                let etag = item.and_then(raw_etag).or_else(|| raw_etag(nsg_raw));
                let remove_destinations =
                    f.evidence.get("action").and_then(Value::as_str) == Some("remove-destinations");
                let mut r = Removals::default();
                let mut a = if remove_destinations {
                    let stale: Vec<String> = f
                        .evidence
                        .get("stale_destinations")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default();
                    if stale.is_empty() {
                        not_planned.push(skip("the finding names no stale destination".into()));
                        continue;
                    }
                    let mut a = base(ActionKind::RemoveNsgDestinations, &f.resource, etag);
                    r.destinations(&f.resource, stale.iter().cloned());
                    a.destinations = stale;
                    a
                } else {
                    let mut a = base(ActionKind::DeleteNsgRule, &f.resource, etag);
                    r.item(&f.resource);
                    a.removes = vec![f.resource.clone()];
                    a
                };
                a.parent = Some(nsg_id.clone());
                drafts.push(Draft {
                    action: a,
                    parent_removals: Some((nsg_id, r)),
                });
            }
            _ => {}
        }
    }
    for id in &opts.include_user_created {
        if !opted_in_seen.contains(&id_key(id)) {
            not_planned.push(NotPlanned {
                rule: USER_CREATED_RULE.into(),
                resource: id.clone(),
                reason: "named by --include-user-created, but the audit does not report it as an unattached, untagged public IP that no Service asks for".into(),
            });
        }
    }

    // Everything each parent loses, for the dependency wiring and the digests.
    let mut removed_by: HashMap<String, String> = HashMap::new();
    for d in &drafts {
        if let Some((_, r)) = &d.parent_removals {
            for item in &r.items {
                removed_by
                    .entry(item.clone())
                    .or_insert_with(|| d.action.id.clone());
            }
        }
    }
    // Public IP rails (need to know what the plan releases) and dependencies.
    let mut kept = Vec::new();
    for mut d in drafts {
        match d.action.kind {
            ActionKind::DeletePublicIp => {
                // Drafts of public IPs exist only for addresses in the inventory.
                let Some(pip) = pips.get(&id_key(&d.action.resource)).copied() else {
                    continue;
                };
                let released = |cfg: &str| removed_by.contains_key(&id_key(cfg));
                let blockers = pip_blockers(&ctx, pip, d.action.user_created, &released);
                if !blockers.is_empty() {
                    not_planned.push(NotPlanned {
                        rule: d.action.finding.rule.clone(),
                        resource: d.action.resource.clone(),
                        reason: blockers.join("; "),
                    });
                    continue;
                }
                if let Some(cfg) = &pip.ip_configuration_id
                    && let Some(dep) = removed_by.get(&id_key(cfg))
                {
                    d.action.depends_on.push(dep.clone());
                }
            }
            ActionKind::DeleteProbe => {
                let Some(lb) = lbs
                    .get(&id_key(d.action.parent.as_deref().unwrap_or_default()))
                    .copied()
                else {
                    continue;
                };
                let users: Vec<&crate::inventory::LbRule> = lb
                    .rules
                    .iter()
                    .filter(|r| {
                        r.probe_id
                            .as_deref()
                            .is_some_and(|p| id_key(p) == id_key(&d.action.resource))
                    })
                    .collect();
                let unplanned: Vec<&str> = users
                    .iter()
                    .filter(|r| !removed_by.contains_key(&id_key(&r.id)))
                    .map(|r| r.name.as_str())
                    .collect();
                if !unplanned.is_empty() {
                    not_planned.push(NotPlanned {
                        rule: d.action.finding.rule.clone(),
                        resource: d.action.resource.clone(),
                        reason: format!("rule(s) {} still use the probe", unplanned.join(", ")),
                    });
                    continue;
                }
                for r in users {
                    if let Some(dep) = removed_by.get(&id_key(&r.id))
                        && *dep != d.action.id
                    {
                        d.action.depends_on.push(dep.clone());
                    }
                }
            }
            _ => {}
        }
        d.action.depends_on.sort();
        d.action.depends_on.dedup();
        kept.push(d);
    }
    // A dependency that was itself dropped drops its dependants.
    loop {
        let ids: BTreeSet<String> = kept.iter().map(|d| d.action.id.clone()).collect();
        let before = kept.len();
        kept.retain(|d| {
            let ok = d.action.depends_on.iter().all(|x| ids.contains(x));
            if !ok {
                not_planned.push(NotPlanned {
                    rule: d.action.finding.rule.clone(),
                    resource: d.action.resource.clone(),
                    reason: "an action it depends on could not be planned".into(),
                });
            }
            ok
        });
        if kept.len() == before {
            break;
        }
    }

    // Parents: ETag as audited and digest minus everything the plan removes from them.
    let mut per_parent: BTreeMap<String, (String, Removals)> = BTreeMap::new();
    for d in &kept {
        if let Some((pid, r)) = &d.parent_removals {
            let e = per_parent
                .entry(id_key(pid))
                .or_insert_with(|| (pid.clone(), Removals::default()));
            e.1.items.extend(r.items.iter().cloned());
            for (rule, dests) in &r.destinations {
                e.1.destinations
                    .entry(rule.clone())
                    .or_default()
                    .extend(dests.iter().cloned());
            }
        }
    }
    let mut parents = Vec::new();
    for (pid, r) in per_parent.values() {
        let Some(v) = &raw(pid) else { continue };
        let mut removes: Vec<String> = kept
            .iter()
            .filter(|d| {
                d.action
                    .parent
                    .as_deref()
                    .is_some_and(|p| id_key(p) == id_key(pid))
            })
            .flat_map(|d| d.action.removes.iter().cloned())
            .collect();
        removes.sort_by_key(|s| id_key(s));
        removes.dedup_by_key(|s| id_key(s));
        let removes_destinations: BTreeMap<String, Vec<String>> = kept
            .iter()
            .filter(|d| d.action.kind == ActionKind::RemoveNsgDestinations)
            .filter(|d| {
                d.action
                    .parent
                    .as_deref()
                    .is_some_and(|p| id_key(p) == id_key(pid))
            })
            .map(|d| (d.action.resource.clone(), d.action.destinations.clone()))
            .collect();
        parents.push(Parent {
            id: pid.clone(),
            subscription: pid.split('/').nth(2).unwrap_or_default().to_string(),
            etag: raw_etag(v),
            digest: edit::parent_digest(v, pid, r),
            removes,
            removes_destinations,
        });
    }

    let mut actions = order(kept.into_iter().map(|d| d.action).collect());
    let by_id: HashMap<String, (u32, ActionKind, String)> = actions
        .iter()
        .map(|a| (a.id.clone(), (a.order, a.kind, short(&a.resource).to_string())))
        .collect();
    for a in &mut actions {
        a.preconditions = preconditions(a, &parents, &pips, &by_id);
    }
    let plan_id = hash16(&format!(
        "{}|{}",
        result.generated_at,
        actions
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    ));
    not_planned.sort_by(|a, b| (&a.rule, id_key(&a.resource)).cmp(&(&b.rule, id_key(&b.resource))));
    Plan {
        plan_version: PLAN_VERSION,
        plan_id,
        created_at: result.generated_at.clone(),
        generator: format!("azaudit {}", env!("CARGO_PKG_VERSION")),
        source: opts.source.clone(),
        tenant_id: world.meta.tenant_id.clone(),
        subscriptions: result.subscriptions.clone(),
        clusters: result.clusters.clone(),
        cluster_details: world
            .meta
            .clusters
            .iter()
            .filter(|c| result.clusters.contains(&c.name))
            .map(|c| PlanCluster {
                name: c.name.clone(),
                cluster_name_tag: c.cluster_name_tag.clone(),
                subscription_id: c.subscription_id.clone(),
                resource_group: c.resource_group.clone(),
            })
            .collect(),
        min_age: opts.min_age.map(crate::state::format_age),
        include_user_created: opts.include_user_created.clone(),
        audit_complete: result.complete(),
        parents,
        actions,
        not_planned,
    }
}

/// Orders actions: dependencies first, otherwise by phase, then resource id. Numbers them.
fn order(actions: Vec<Action>) -> Vec<Action> {
    let mut pending: Vec<Action> = actions;
    pending.sort_by_key(|a| (a.kind.phase(), id_key(&a.resource)));
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let pos = pending
            .iter()
            .position(|a| a.depends_on.iter().all(|d| done.contains(d)))
            // A cycle cannot be built from the rules above; if one ever appears, keep going in
            // phase order rather than loop (apply skips what is not ready).
            .unwrap_or(0);
        let mut a = pending.remove(pos);
        a.order = out.len() as u32 + 1;
        done.insert(a.id.clone());
        out.push(a);
    }
    out
}

fn preconditions(
    a: &Action,
    parents: &[Parent],
    pips: &HashMap<String, &PublicIp>,
    by_id: &HashMap<String, (u32, ActionKind, String)>,
) -> Vec<String> {
    let mut out = Vec::new();
    let etag = a.etag.as_deref().unwrap_or("(none recorded)");
    match &a.parent {
        Some(pid) => {
            let pe = parents
                .iter()
                .find(|p| id_key(&p.id) == id_key(pid))
                .and_then(|p| p.etag.clone())
                .unwrap_or_else(|| "(none recorded)".into());
            out.push(format!(
                "{} {} is unchanged since the audit: ETag {pe}, or changed only by this plan's own earlier actions (digest check); the write is sent with If-Match",
                if a.kind == ActionKind::DeleteNsgRule || a.kind == ActionKind::RemoveNsgDestinations {
                    "NSG"
                } else {
                    "Load balancer"
                },
                short(pid)
            ));
        }
        None => out.push(format!(
            "{} is unchanged since the audit: ETag {etag}, or only its association changed through this plan (digest check); the delete is sent with If-Match",
            short(&a.resource)
        )),
    }
    let cluster = a.cluster.as_deref().unwrap_or("(every audited cluster)");
    out.push(format!(
        "re-checked live just before the write: {} still reports {} for this resource, with Kubernetes listed again (a Service created since the plan stops the action)",
        cluster, a.finding.rule
    ));
    match a.kind {
        ActionKind::DeletePublicIp => {
            let pip = pips.get(&id_key(&a.resource));
            let ip = pip
                .and_then(|p| p.ip_address.clone())
                .unwrap_or_else(|| "(no address)".into());
            if a.user_created {
                out.push(
                    "user-created (no ownership tag): included only because --include-user-created names it"
                        .into(),
                );
            } else {
                let tagged = pip
                    .and_then(|p| tag(&p.tags, TAG_SERVICE).map(str::to_string))
                    .unwrap_or_default();
                out.push(format!(
                    "tagged by the cloud provider for {tagged}; none of these Services exists"
                ));
            }
            out.push("not attached to any IP configuration, NAT gateway or public IP prefix".into());
            out.push(format!(
                "no Service in any audited cluster asks for {ip} or {} (loadBalancerIP, azure-load-balancer-ipv4/ipv6, azure-pip-name) or holds it as ingress",
                short(&a.resource)
            ));
        }
        ActionKind::RemoveFrontend => {
            out.push("no live Service owns the frontend by name or pins its address".into());
            let others: Vec<&str> = a.removes.iter().skip(1).map(|s| short(s)).collect();
            if !others.is_empty() {
                out.push(format!("removed with it, in the same PUT: {}", others.join(", ")));
            }
            out.push("no inbound NAT or outbound rule uses it".into());
        }
        ActionKind::DeleteLbRule => {
            if let Some(r) = a.finding.evidence.get("reason").and_then(Value::as_str) {
                out.push(format!("still true: {r}"));
            }
        }
        ActionKind::DeleteProbe => {
            out.push("no remaining load-balancing rule uses the probe".into());
        }
        ActionKind::DeleteNsgRule => {
            out.push(
                "none of its destinations is a Service ingress IP, an additional public IP or a node address"
                    .into(),
            );
        }
        ActionKind::RemoveNsgDestinations => {
            out.push(format!(
                "removes only {} from the rule; its other destinations stay",
                a.destinations.join(", ")
            ));
        }
    }
    for d in &a.depends_on {
        if let Some((order, kind, name)) = by_id.get(d) {
            out.push(format!("after action {order} ({kind} {name}) is done"));
        }
    }
    out
}
