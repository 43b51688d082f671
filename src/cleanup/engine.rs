//! `cleanup apply`'s engine: carries out a plan against an [`Estate`] (ARM and the clusters, or
//! a fake in tests), action by action, in plan order.
//!
//! For each action:
//! 1. its dependencies must be done (a public IP after the frontend that held it);
//! 2. re-read the resource (for edits: its load balancer or NSG) from ARM, fresh. Gone, or the
//!    target already removed → nothing to do ("already done"; this is what makes a second run
//!    of the same plan, or a run after a crash, change nothing twice);
//! 3. the guard: the ETag is the one planned, or the resource differs from the audited one only
//!    by this plan's own removals (`edit`'s digests). Otherwise skip: a plan never acts on a
//!    resource someone else changed since;
//! 4. the live re-check: Kubernetes is listed again, the re-read resource replaces the old copy,
//!    and the action's rule runs over the result. The finding for this exact resource must still
//!    be reported, and the plan's safety rails must still pass (a Service created after the plan
//!    that asks for the address stops the action);
//! 5. `started` is logged (fsync'd), the write goes out with `If-Match` (the ETag just read), its
//!    long-running operation is followed to the end, and `done` / `skipped` / `failed` is
//!    logged.
//!
//! Refusals: 412 means someone changed the resource between our read and our write — re-read; if
//! the change is in place (a retry of a write that landed), it is done, else skipped. A lock
//! (409 `ScopeLocked`) and an in-use refusal are failures reported plainly and never retried,
//! and the run goes on with actions that do not depend on them. Any other failure stops the run
//! unless `--keep-going`.
//!
//! Must not write without `If-Match`, write anything the plan does not name, or write in a dry
//! run.

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use azaudit_world::{ArmResource, World, id_key};
use serde::Serialize;
use serde_json::Value;

use super::edit::{self, Removals};
use super::log::{ApplyLog, Entry, Event, LogError};
use super::plan::{Action, ActionKind, Plan, USER_CREATED_RULE, pip_blockers};
use crate::arm::{ArmError, WriteMethod, WriteOutcome};
use crate::checks::{self, Context};
use crate::collect::ClusterListing;
use crate::findings::Finding;
use crate::inventory::{Gap, GapScope};

/// What apply talks to: ARM for reads and writes, the clusters for fresh listings.
#[async_trait]
pub trait Estate: Send + Sync {
    /// The plan's subscriptions and clusters as they are now (the base of every re-check).
    async fn collect(&self) -> Result<World, String>;
    /// Every plan cluster's Kubernetes objects, listed now.
    async fn kubernetes(&self) -> Result<Vec<ClusterListing>, String>;
    /// A resource as ARM holds it now (`None`: 404).
    async fn get(&self, subscription: &str, id: &str) -> Result<Option<Value>, ArmError>;
    /// A PUT or DELETE with `If-Match`, followed to the end of its operation.
    async fn write(
        &self,
        method: WriteMethod,
        subscription: &str,
        id: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<WriteOutcome, ArmError>;
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Written and completed.
    Done {
        etag_after: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Nothing to write: the change is already in place.
    AlreadyDone { reason: String },
    /// Not written, on purpose (changed since the plan, no longer orphaned, a dependency...).
    Skipped { reason: String },
    /// `--dry-run`: what would have been written.
    WouldApply { method: String, target: String },
    /// The write, or a read it needed, failed. `expected`: a lock or an in-use refusal, which
    /// does not stop the run.
    Failed {
        error: String,
        error_kind: String,
        expected: bool,
    },
}

impl Outcome {
    /// Counts as done for dependants.
    fn completes(&self) -> bool {
        matches!(
            self,
            Outcome::Done { .. } | Outcome::AlreadyDone { .. } | Outcome::WouldApply { .. }
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::AlreadyDone { .. } => "already done",
            Outcome::Skipped { .. } => "skipped",
            Outcome::WouldApply { .. } => "would apply",
            Outcome::Failed { .. } => "FAILED",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Outcome::Done { etag_after, note } => {
                let mut s = match etag_after {
                    Some(e) => format!("new ETag {e}"),
                    None => "deleted".to_string(),
                };
                if let Some(n) = note {
                    s.push_str("; ");
                    s.push_str(n);
                }
                s
            }
            Outcome::AlreadyDone { reason } | Outcome::Skipped { reason } => reason.clone(),
            Outcome::WouldApply { method, target } => format!("{method} {target}"),
            Outcome::Failed { error, .. } => error.clone(),
        }
    }
}

/// One action's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResult {
    pub action: String,
    pub order: u32,
    pub kind: ActionKind,
    pub resource: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Everything an apply did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    pub plan_id: String,
    pub dry_run: bool,
    pub results: Vec<ActionResult>,
    /// The action at which the run stopped (an unexpected failure, without `--keep-going`).
    pub stopped_at: Option<u32>,
}

impl ApplyReport {
    pub fn count(&self, label: &str) -> usize {
        self.results.iter().filter(|r| r.outcome.label() == label).count()
    }

    pub fn failed(&self) -> bool {
        self.results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed { .. }))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub keep_going: bool,
    /// The config file: a suppression added since the plan keeps its resource.
    pub config: crate::config::Config,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "collect the estate before applying: {0}. Nothing was written; fix the access problem (`azaudit doctor`) and run the apply again"
    )]
    Collect(String),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The engine's view during a run.
struct Run<'a> {
    plan: &'a Plan,
    estate: &'a dyn Estate,
    opts: &'a ApplyOptions,
    world: World,
    /// What a dry run pretends it removed, so that later actions see the estate as a real run
    /// would (a probe after the rule that used it, an address after its frontend).
    simulated: Removals,
}

fn skipped(reason: impl Into<String>) -> Outcome {
    Outcome::Skipped {
        reason: reason.into(),
    }
}

fn already(reason: impl Into<String>) -> Outcome {
    Outcome::AlreadyDone {
        reason: reason.into(),
    }
}

fn failed(e: &ArmError) -> Outcome {
    let expected = matches!(e, ArmError::Locked { .. } | ArmError::InUse { .. });
    Outcome::Failed {
        error: e.to_string(),
        error_kind: e.step().to_string(),
        expected,
    }
}

fn etag_of(v: &Value) -> Option<String> {
    v.get("etag").and_then(Value::as_str).map(str::to_string)
}

fn short(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// What a write is about, before it is sent.
struct Prepared {
    method: WriteMethod,
    target: String,
    body: Option<Value>,
    if_match: Option<String>,
    removals: Removals,
}

impl Run<'_> {
    fn subscription<'s>(&self, a: &'s Action) -> &'s str {
        if a.subscription.is_empty() {
            a.resource.split('/').nth(2).unwrap_or_default()
        } else {
            &a.subscription
        }
    }

    /// Puts a fresh copy of a resource into the re-check world (or removes it).
    fn remember(&mut self, id: &str, v: Option<&Value>) {
        let key = id_key(id);
        match v {
            None => {
                self.world.resources.remove(&key);
            }
            Some(v) => {
                let type_ = v
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| self.world.resources.get(&key).map(|r| r.type_.clone()))
                    .unwrap_or_default();
                let id = v.get("id").and_then(Value::as_str).unwrap_or(id).to_string();
                self.world
                    .resources
                    .insert(key, ArmResource::new(id, type_, v, "cleanup-apply".into()));
            }
        }
    }

    /// Lists Kubernetes again and puts the listings (and their failures, as gaps) into the world.
    async fn refresh_kubernetes(&mut self) -> Result<(), String> {
        let listings = self.estate.kubernetes().await?;
        for l in listings {
            let entry =
                self.world
                    .clusters
                    .entry(l.name.clone())
                    .or_insert_with(|| azaudit_world::ClusterObjects {
                        name: l.name.clone(),
                        ..Default::default()
                    });
            entry.objects = l.objects;
            self.world.meta.gaps.retain(|g| {
                !serde_json::from_value::<Gap>(g.clone()).is_ok_and(
                    |g| matches!(&g.scope, GapScope::Kubernetes { cluster, .. } if *cluster == l.name),
                )
            });
            for (kind, cause) in l.failures {
                let gap = Gap {
                    scope: GapScope::Kubernetes {
                        cluster: l.name.clone(),
                        kind,
                    },
                    cause,
                };
                if let Ok(v) = serde_json::to_value(gap) {
                    self.world.meta.gaps.push(v);
                }
            }
        }
        Ok(())
    }

    /// Runs the action's rule over the re-check world: the finding for this resource, if the
    /// audit still reports it; otherwise why not.
    fn recheck(&self, a: &Action) -> Result<(Finding, crate::inventory::Inventory), String> {
        let inv = crate::snapshot::inventory_from_world(&self.world);
        let rule: &str = &a.finding.rule;
        let ctx = Context::new(&inv);
        let Some(r) = checks::find(rule) else {
            return Err(format!("rule {rule} is unknown to this azaudit"));
        };
        let found = checks::run(&ctx, Some(&[r.info.id]))
            .into_iter()
            .find(|f| id_key(&f.resource) == id_key(&a.resource));
        if let Some(f) = &found {
            let today = time::OffsetDateTime::now_utc().date();
            let (_, suppressed) =
                crate::config::apply(&self.opts.config, vec![f.clone()], today, &[r.info.id]);
            if let Some(s) = suppressed.first() {
                return Err(format!(
                    "suppressed in the config file ({}): {}",
                    s.location, s.reason
                ));
            }
        }
        match found {
            Some(f) if f.cleanup_eligible || rule == USER_CREATED_RULE => Ok((f, inv)),
            _ => {
                let gaps: Vec<String> = inv
                    .gaps
                    .iter()
                    .filter(|g| match &g.scope {
                        GapScope::Kubernetes { cluster, .. } => {
                            a.cluster.as_deref().is_none_or(|c| c == cluster)
                        }
                        GapScope::Arm { subscription, .. } => {
                            subscription.eq_ignore_ascii_case(self.subscription(a))
                        }
                        GapScope::Other { .. } => true,
                    })
                    .map(|g| g.cause.clone())
                    .collect();
                if !gaps.is_empty() {
                    return Err(format!(
                        "cannot confirm it is still orphaned: {} (nothing was written)",
                        gaps.join("; ")
                    ));
                }
                let mut why = format!(
                    "the finding no longer holds: a fresh audit (Kubernetes listed just now) does not report {rule} for it"
                );
                let pip_id = match a.kind {
                    ActionKind::DeletePublicIp => Some(a.resource.clone()),
                    ActionKind::RemoveFrontend => inv
                        .load_balancers
                        .iter()
                        .flat_map(|l| &l.frontends)
                        .find(|f| id_key(&f.id) == id_key(&a.resource))
                        .and_then(|f| f.public_ip_id.clone()),
                    _ => None,
                };
                if let Some(p) = pip_id
                    && let Some(pip) = inv.public_ips.iter().find(|x| id_key(&x.id) == id_key(&p))
                {
                    let wanted = ctx.services_requesting_pip(pip);
                    if !wanted.is_empty() {
                        why.push_str(&format!(
                            " (Service(s) {} ask for its address {})",
                            wanted.join(", "),
                            pip.ip_address.as_deref().unwrap_or("")
                        ));
                    }
                }
                Err(why)
            }
        }
    }

    /// Steps 2–4 of the module doc: read, guard, re-check, and what to write.
    async fn prepare(&mut self, a: &Action) -> Result<Prepared, Outcome> {
        let sub = self.subscription(a).to_string();
        let target = a.parent.clone().unwrap_or_else(|| a.resource.clone());
        let current = match self.estate.get(&sub, &target).await {
            Ok(v) => v,
            Err(e) => return Err(failed(&e)),
        };
        // A dry run sees its own pretended removals.
        let current = match current {
            Some(v) if self.opts.dry_run => Some(edit::without(&v, &target, &self.simulated)),
            other => other,
        };
        self.remember(&target, current.as_ref());
        let Some(cur) = current else {
            return Err(already(if a.parent.is_some() {
                format!("{} is gone, and {} with it", short(&target), short(&a.resource))
            } else {
                format!("{} is already gone", short(&a.resource))
            }));
        };
        let cur_etag = etag_of(&cur);
        let mut removals = Removals::default();
        match a.kind {
            ActionKind::DeletePublicIp => {
                let unchanged = cur_etag.is_some() && cur_etag == a.etag
                    || a.digest.as_deref() == Some(edit::pip_digest(&cur).as_str());
                if !unchanged {
                    return Err(skipped(format!(
                        "changed since the plan: ETag {} (planned {}) and its content differ from the audited public IP",
                        cur_etag.as_deref().unwrap_or("none"),
                        a.etag.as_deref().unwrap_or("none")
                    )));
                }
            }
            _ => {
                let parent = self.plan.parent(&target);
                let gone = match a.kind {
                    ActionKind::RemoveNsgDestinations => match edit::find_item(&cur, &target, &a.resource) {
                        None => true,
                        Some(rule) => {
                            let now: BTreeSet<String> = edit::destinations(rule).into_iter().collect();
                            !a.destinations.iter().any(|d| now.contains(d))
                        }
                    },
                    _ => !edit::present(&cur, &target, &a.resource),
                };
                if gone {
                    return Err(already(format!(
                        "{} is no longer in {}",
                        short(&a.resource),
                        short(&target)
                    )));
                }
                let unchanged = parent.is_some_and(|p| {
                    cur_etag.is_some() && cur_etag == p.etag
                        || edit::parent_digest(&cur, &target, &p.removals()) == p.digest
                });
                if !unchanged {
                    return Err(skipped(format!(
                        "{} changed since the plan: ETag {} (planned {}), and not only through this plan's own actions",
                        short(&target),
                        cur_etag.as_deref().unwrap_or("none"),
                        parent.and_then(|p| p.etag.as_deref()).unwrap_or("none")
                    )));
                }
            }
        }

        // The live re-check.
        if let Err(e) = self.refresh_kubernetes().await {
            return Err(skipped(format!(
                "cannot list Kubernetes to re-check ({e}); nothing was written"
            )));
        }
        let (finding, inv) = match self.recheck(a) {
            Ok(x) => x,
            Err(why) => return Err(skipped(why)),
        };
        let ctx = Context::new(&inv);
        match a.kind {
            ActionKind::DeletePublicIp => {
                let Some(pip) = inv
                    .public_ips
                    .iter()
                    .find(|p| id_key(&p.id) == id_key(&a.resource))
                else {
                    return Err(skipped("the public IP is not in the fresh inventory"));
                };
                let simulated = &self.simulated;
                let released = |cfg: &str| simulated.items.contains(&id_key(cfg));
                let opted_in = self
                    .plan
                    .include_user_created
                    .iter()
                    .any(|x| id_key(x) == id_key(&a.resource));
                if a.user_created && !opted_in {
                    return Err(skipped(
                        "user-created (untagged), and the plan's include_user_created does not name it: only an explicit --include-user-created makes it deletable",
                    ));
                }
                let blockers = pip_blockers(&ctx, pip, a.user_created, &released);
                if !blockers.is_empty() {
                    return Err(skipped(format!(
                        "not safe to delete now: {}",
                        blockers.join("; ")
                    )));
                }
            }
            ActionKind::RemoveFrontend => {
                for id in &a.removes {
                    if edit::present(&cur, &target, id) {
                        removals.item(id);
                    }
                }
                // A probe that a rule outside the removal still uses stays.
                let lb = inv
                    .load_balancers
                    .iter()
                    .find(|l| id_key(&l.id) == id_key(&target));
                if let Some(lb) = lb {
                    let keep: Vec<String> = lb
                        .probes
                        .iter()
                        .filter(|p| removals.items.contains(&id_key(&p.id)))
                        .filter(|p| {
                            lb.rules.iter().any(|r| {
                                !removals.items.contains(&id_key(&r.id))
                                    && r.probe_id.as_deref().is_some_and(|x| id_key(x) == id_key(&p.id))
                            })
                        })
                        .map(|p| id_key(&p.id))
                        .collect();
                    for k in keep {
                        removals.items.remove(&k);
                    }
                }
            }
            ActionKind::DeleteLbRule | ActionKind::DeleteProbe | ActionKind::DeleteNsgRule => {
                if a.kind == ActionKind::DeleteNsgRule
                    && finding.evidence.get("action").and_then(Value::as_str) != Some("delete-rule")
                {
                    return Err(skipped(
                        "some of the rule's destinations are in use again: the audit now only suggests removing stale destinations",
                    ));
                }
                removals.item(&a.resource);
            }
            ActionKind::RemoveNsgDestinations => {
                let stale: BTreeSet<String> = finding
                    .evidence
                    .get("stale_destinations")
                    .and_then(Value::as_array)
                    .map(|x| x.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                let remove: Vec<String> = a
                    .destinations
                    .iter()
                    .filter(|d| stale.contains(*d))
                    .cloned()
                    .collect();
                if remove.is_empty() {
                    return Err(skipped("none of the planned destinations is stale any more"));
                }
                let rule = edit::find_item(&cur, &target, &a.resource);
                let left = rule
                    .map(edit::destinations)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|d| !remove.contains(d))
                    .count();
                if left == 0 {
                    return Err(skipped(
                        "removing the planned destinations would leave the rule with none; make a new plan (it will delete the rule)",
                    ));
                }
                removals.destinations(&a.resource, remove);
            }
        }

        let (method, body) = match a.kind {
            ActionKind::DeletePublicIp => (WriteMethod::Delete, None),
            _ => {
                let body = edit::put_body(&cur, &target, &removals);
                // Nothing left may point at what goes.
                let mut refs = Vec::new();
                collect_refs(body.get("properties").unwrap_or(&Value::Null), &mut refs);
                if let Some(r) = refs.iter().find(|r| removals.items.contains(&id_key(r))) {
                    return Err(skipped(format!(
                        "{} is still referenced by something the plan does not remove ({}); nothing was written",
                        short(r),
                        short(&target)
                    )));
                }
                (WriteMethod::Put, Some(body))
            }
        };
        Ok(Prepared {
            method,
            target,
            body,
            if_match: cur_etag,
            removals,
        })
    }

    /// Whether the change of `a` is in place now (after a 412).
    async fn in_place(&mut self, a: &Action, p: &Prepared) -> bool {
        let sub = self.subscription(a).to_string();
        let Ok(v) = self.estate.get(&sub, &p.target).await else {
            return false;
        };
        self.remember(&p.target, v.as_ref());
        match (a.kind, v) {
            (_, None) => true,
            (ActionKind::DeletePublicIp, Some(_)) => false,
            (ActionKind::RemoveNsgDestinations, Some(v)) => edit::find_item(&v, &p.target, &a.resource)
                .is_none_or(|rule| {
                    let now: BTreeSet<String> = edit::destinations(rule).into_iter().collect();
                    p.removals
                        .destinations
                        .values()
                        .flatten()
                        .all(|d| !now.contains(d))
                }),
            (_, Some(v)) => p
                .removals
                .items
                .iter()
                .all(|id| !edit::present(&v, &p.target, id)),
        }
    }

    async fn run_action(
        &mut self,
        a: &Action,
        log: &mut Option<&mut ApplyLog>,
        run: &str,
    ) -> Result<Outcome, LogError> {
        let p = match self.prepare(a).await {
            Ok(p) => p,
            Err(o) => return Ok(o),
        };
        if self.opts.dry_run {
            self.simulated.items.extend(p.removals.items.iter().cloned());
            for (rule, d) in &p.removals.destinations {
                self.simulated
                    .destinations
                    .entry(rule.clone())
                    .or_default()
                    .extend(d.iter().cloned());
            }
            return Ok(Outcome::WouldApply {
                method: p.method.as_str().to_string(),
                target: p.target.clone(),
            });
        }
        if let Some(l) = log.as_deref_mut() {
            l.append(Entry {
                plan_id: self.plan.plan_id.clone(),
                run: run.to_string(),
                event: Some(Event::Started),
                action: Some(a.id.clone()),
                order: Some(a.order),
                kind: Some(a.kind.to_string()),
                resource: Some(a.resource.clone()),
                method: Some(p.method.as_str().to_string()),
                target: Some(p.target.clone()),
                if_match: p.if_match.clone(),
                ..Default::default()
            })?;
        }
        let sub = self.subscription(a).to_string();
        let result = self
            .estate
            .write(p.method, &sub, &p.target, p.body.clone(), p.if_match.as_deref())
            .await;
        Ok(match result {
            Ok(out) => {
                let etag_after = out.resource.as_ref().and_then(etag_of);
                match p.method {
                    WriteMethod::Put => self.remember(&p.target, out.resource.as_ref()),
                    WriteMethod::Delete => self.remember(&p.target, None),
                }
                Outcome::Done {
                    etag_after,
                    note: (out.state == "NoContent")
                        .then(|| "ARM answered 204: there was nothing left to delete".to_string()),
                }
            }
            Err(e @ ArmError::PreconditionFailed { .. }) => {
                if self.in_place(a, &p).await {
                    Outcome::Done {
                        etag_after: None,
                        note: Some(
                            "ARM answered 412 to a retry of a write that had landed; the change is in place"
                                .into(),
                        ),
                    }
                } else {
                    skipped(format!("changed between the re-read and the write: {e}"))
                }
            }
            Err(e) => failed(&e),
        })
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("id", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// A short run id: process id and start time.
fn run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), ms)
}

/// Applies `plan`. `on_result` sees every action's outcome as it happens (progress output).
pub async fn apply(
    plan: &Plan,
    estate: &dyn Estate,
    mut log: Option<&mut ApplyLog>,
    opts: &ApplyOptions,
    on_result: &mut (dyn FnMut(&Action, &Outcome) + Send),
) -> Result<ApplyReport, EngineError> {
    let world = estate.collect().await.map_err(EngineError::Collect)?;
    let run = run_id();
    let mut r = Run {
        plan,
        estate,
        opts,
        world,
        simulated: Removals::default(),
    };
    if let Some(l) = log.as_deref_mut() {
        l.append(Entry {
            plan_id: plan.plan_id.clone(),
            run: run.clone(),
            event: Some(Event::RunStarted),
            summary: Some(serde_json::json!({"actions": plan.actions.len()})),
            ..Default::default()
        })?;
    }
    let mut actions: Vec<&Action> = plan.actions.iter().collect();
    actions.sort_by_key(|a| a.order);
    let mut completed: HashSet<String> = HashSet::new();
    let mut results = Vec::new();
    let mut stopped_at = None;
    for a in actions {
        let outcome = if let Some(n) = stopped_at {
            skipped(format!(
                "not attempted: the apply stopped after action {n} failed (run again, or pass --keep-going to go past failures)"
            ))
        } else if let Some(dep) = a.depends_on.iter().find(|d| !completed.contains(*d)) {
            let what = plan
                .action(dep)
                .map(|d| format!("action {} ({} {})", d.order, d.kind, short(&d.resource)))
                .unwrap_or_else(|| format!("action {dep}"));
            skipped(format!("depends on {what}, which did not complete"))
        } else {
            r.run_action(a, &mut log, &run).await?
        };
        if outcome.completes() {
            completed.insert(a.id.clone());
        }
        if let Outcome::Failed { expected: false, .. } = outcome
            && !opts.keep_going
            && stopped_at.is_none()
        {
            stopped_at = Some(a.order);
        }
        if let Some(l) = log.as_deref_mut() {
            let (event, reason, error, error_kind, etag_after) = match &outcome {
                Outcome::Done { etag_after, note } => {
                    (Event::Done, note.clone(), None, None, etag_after.clone())
                }
                Outcome::AlreadyDone { reason } => (
                    Event::Skipped,
                    Some(format!("already done: {reason}")),
                    None,
                    None,
                    None,
                ),
                Outcome::Skipped { reason } => (Event::Skipped, Some(reason.clone()), None, None, None),
                Outcome::WouldApply { .. } => (Event::Skipped, Some("dry run".into()), None, None, None),
                Outcome::Failed {
                    error, error_kind, ..
                } => (
                    Event::Failed,
                    None,
                    Some(error.clone()),
                    Some(error_kind.clone()),
                    None,
                ),
            };
            l.append(Entry {
                plan_id: plan.plan_id.clone(),
                run: run.clone(),
                event: Some(event),
                action: Some(a.id.clone()),
                order: Some(a.order),
                kind: Some(a.kind.to_string()),
                resource: Some(a.resource.clone()),
                reason,
                error,
                error_kind,
                etag_after,
                ..Default::default()
            })?;
        }
        on_result(a, &outcome);
        results.push(ActionResult {
            action: a.id.clone(),
            order: a.order,
            kind: a.kind,
            resource: a.resource.clone(),
            outcome,
        });
    }
    let report = ApplyReport {
        plan_id: plan.plan_id.clone(),
        dry_run: opts.dry_run,
        results,
        stopped_at,
    };
    if let Some(l) = log {
        l.append(Entry {
            plan_id: plan.plan_id.clone(),
            run,
            event: Some(Event::RunFinished),
            summary: Some(serde_json::json!({
                "done": report.count("done"),
                "already_done": report.count("already done"),
                "skipped": report.count("skipped"),
                "failed": report.count("FAILED"),
                "stopped_at": report.stopped_at,
            })),
            ..Default::default()
        })?;
    }
    Ok(report)
}
