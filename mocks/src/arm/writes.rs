//! ARM writes (issue 7): PUT and DELETE of public IPs, load balancers and network security groups
//! with the Network resource provider's semantics, so that `azaudit cleanup apply` is tested
//! against the behaviour it meets in Azure:
//!
//! - `If-Match`: a write whose ETag does not match the resource's is refused with 412
//!   `PreconditionFailed` (ARM's optimistic concurrency, "Optimistic concurrency support",
//!   https://learn.microsoft.com/azure/azure-resource-manager/management/optimistic-concurrency);
//! - every change gives the resource a new `W/"<guid>"` ETag, copied to its sub-resources as the
//!   Network RP does (recorded fixtures: a load balancer's frontends carry the LB's ETag);
//! - long-running operations: PUT answers 200 (update) or 201 (create) with the resource in
//!   `provisioningState: Updating` and an `Azure-AsyncOperation` URL; DELETE answers 202 with
//!   `Location` and `Azure-AsyncOperation`. The status reports `InProgress` for
//!   `writes.async_polls` polls, then `Succeeded` (the statuses `armnetwork/v9`'s pollers accept:
//!   `BeginCreateOrUpdate` takes 200/201, `BeginDelete` 200/202/204). A DELETE of a resource
//!   that does not exist answers 204;
//! - a public IP still allocated to an IP configuration (a frontend, a NIC) or a NAT gateway
//!   cannot be deleted: 400 `PublicIPAddressCannotBeDeleted` with Azure's message ("Public IP
//!   address ... can not be deleted since it is still allocated to resource ..."); an NSG still
//!   associated with a subnet or NIC: 400 `InUseNetworkSecurityGroupCannotBeDeleted`;
//! - a load balancer whose rules reference a frontend, pool or probe that is not in the body, or
//!   a frontend naming a public IP that does not exist: 400 `InvalidResourceReference`;
//! - locks (`mock.locks` in world.json): 409 `ScopeLocked`, with ARM's message;
//! - writes draw from their own buckets (`x-ms-ratelimit-remaining-subscription-writes` /
//!   `-deletes`, the caller's throttle step) and need the `.../write` or `.../delete` action;
//! - public IPs follow their load balancer: a PUT that removes (or adds) a frontend clears (or
//!   sets) the IP's `ipConfiguration`, and gives the IP a new ETag, as ARM does.
//!
//! Every write is recorded in `stats.writes` (`/_mock/stats`). It must not touch anything but the
//! world it was given, and never writes sub-resources directly (clients PUT the parent, as
//! cloud-provider-azure does).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use azaudit_world::{ArmResource, World, id_key};
use serde_json::{Map, Value, json};

use super::routes::{self, Route};
use super::{Reply, authz, uuid, view};
use crate::state::{MockState, Principal, WriteRecord};
use crate::tokens::Claims;

/// The types the mock writes, in ARM's casing, with their sub-resource collections.
const WRITABLE: &[(&str, &[&str])] = &[
    ("Microsoft.Network/publicIPAddresses", &[]),
    (
        "Microsoft.Network/loadBalancers",
        &[
            "frontendIPConfigurations",
            "backendAddressPools",
            "loadBalancingRules",
            "probes",
            "inboundNatRules",
            "inboundNatPools",
            "outboundRules",
        ],
    ),
    (
        "Microsoft.Network/networkSecurityGroups",
        &["securityRules", "defaultSecurityRules"],
    ),
];

const PIP_TYPE: &str = "Microsoft.Network/publicIPAddresses";
const LB_TYPE: &str = "Microsoft.Network/loadBalancers";
const NSG_TYPE: &str = "Microsoft.Network/networkSecurityGroups";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// The verb of the RBAC action and of ARM's lock message.
    fn verb(self) -> &'static str {
        match self {
            Method::Put => "write",
            Method::Delete => "delete",
        }
    }
}

/// An authenticated, admitted write.
pub(crate) struct WriteRequest<'a> {
    pub method: Method,
    pub route: &'a Route,
    pub principal: Option<&'a Principal>,
    pub claims: &'a Claims,
    pub api_version: &'a str,
    pub if_match: Option<&'a str>,
    pub body: &'a [u8],
    /// `https://127.0.0.1:P`, for the operation URLs.
    pub arm_endpoint: &'a str,
}

/// One long-running operation.
#[derive(Debug, Clone)]
struct Op {
    /// [`id_key`] of the resource.
    resource_key: String,
    method: Method,
    /// `InProgress` answers left before it completes.
    polls_left: u32,
    done: bool,
}

/// The long-running operations the mock has started (kept for the life of the mock).
#[derive(Debug, Default)]
pub struct Operations {
    ops: BTreeMap<String, Op>,
}

fn etag_of(v: &Value) -> Option<String> {
    v.get("etag").and_then(Value::as_str).map(str::to_string)
}

fn new_etag() -> String {
    format!("W/\"{}\"", uuid())
}

fn error_code(reply: &Reply) -> Option<String> {
    if reply.status.is_success() {
        return None;
    }
    serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
}

/// `true` when `id` is `scope` or lies under it (ARM ids compared case-insensitively).
fn covers(scope: &str, id: &str) -> bool {
    let (s, i) = (id_key(scope), id_key(id));
    i == s || i.starts_with(&format!("{s}/"))
}

fn props_mut(v: &mut Value) -> Option<&mut Map<String, Value>> {
    if !v.get("properties").is_some_and(Value::is_object) {
        v.as_object_mut()?
            .insert("properties".into(), Value::Object(Map::new()));
    }
    v.get_mut("properties")?.as_object_mut()
}

fn set_provisioning(v: &mut Value, state: &str, collections: &[&str]) {
    if let Some(p) = props_mut(v) {
        p.insert("provisioningState".into(), json!(state));
        for c in collections {
            if let Some(Value::Array(items)) = p.get_mut(*c) {
                for item in items {
                    if let Some(ip) = props_mut(item) {
                        ip.insert("provisioningState".into(), json!(state));
                    }
                }
            }
        }
    }
}

fn collections_of(type_: &str) -> &'static [&'static str] {
    WRITABLE
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(type_))
        .map(|(_, c)| *c)
        .unwrap_or(&[])
}

/// Every `{"id": ...}` reference inside a value (recursively), except the item's own `id`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "id" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    references(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn item_name(item: &Value) -> String {
    item.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn invalid_reference(reference: &str, by: &str) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceReference",
        format!(
            "Resource {reference} referenced by resource {by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
        ),
    )
}

/// The public IPs a load balancer's frontends name: (lower-cased PIP id, frontend id).
fn frontend_pips(lb: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(fes) = lb["properties"]["frontendIPConfigurations"].as_array() else {
        return out;
    };
    for fe in fes {
        if let (Some(pip), Some(fe_id)) = (
            fe["properties"]["publicIPAddress"]["id"].as_str(),
            fe["id"].as_str(),
        ) {
            out.push((id_key(pip), fe_id.to_string()));
        }
    }
    out
}

/// Gives public IPs that a load balancer change released or took the new association (and a new
/// ETag, as ARM does for every resource whose representation changes).
fn follow_frontends(world: &mut World, before: &[(String, String)], after: &[(String, String)]) {
    for (pip, fe) in before {
        if after.iter().any(|(p, _)| p == pip) {
            continue;
        }
        if let Some(r) = world.resources.get_mut(pip) {
            r.edit(|v| {
                let attached_here = v["properties"]["ipConfiguration"]["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(fe));
                if attached_here && let Some(p) = props_mut(v) {
                    p.remove("ipConfiguration");
                    v["etag"] = json!(new_etag());
                }
            });
        }
    }
    for (pip, fe) in after {
        if let Some(r) = world.resources.get_mut(pip) {
            r.edit(|v| {
                let current = v["properties"]["ipConfiguration"]["id"].as_str();
                if !current.is_some_and(|id| id.eq_ignore_ascii_case(fe))
                    && let Some(p) = props_mut(v)
                {
                    p.insert("ipConfiguration".into(), json!({"id": fe}));
                    v["etag"] = json!(new_etag());
                }
            });
        }
    }
}

/// What still holds a public IP: its own `ipConfiguration` / `natGateway`, or any frontend or
/// NIC IP configuration of the world that names it.
fn pip_holder(world: &World, pip: &ArmResource) -> Option<String> {
    let pip_value = pip.value();
    let props = &pip_value["properties"];
    if let Some(id) = props["ipConfiguration"]["id"].as_str() {
        return Some(id.to_string());
    }
    if let Some(id) = props["natGateway"]["id"].as_str() {
        return Some(id.to_string());
    }
    let key = id_key(&pip.id);
    for r in world.resources.values() {
        let v = r.value();
        for coll in ["frontendIPConfigurations", "ipConfigurations"] {
            if let Some(items) = v["properties"][coll].as_array() {
                for item in items {
                    if item["properties"]["publicIPAddress"]["id"]
                        .as_str()
                        .is_some_and(|p| id_key(p) == key)
                    {
                        let name = item_name(item);
                        return Some(
                            item["id"]
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| format!("{}/{coll}/{name}", r.id)),
                        );
                    }
                }
            }
        }
    }
    None
}

/// The operation URLs: `Azure-AsyncOperation` (status) and `Location` (result).
fn operation_urls(arm: &str, sub: &str, location: &str, op: &str, api_version: &str) -> (String, String) {
    let base = format!("{arm}/subscriptions/{sub}/providers/Microsoft.Network/locations/{location}");
    let q = url::form_urlencoded::byte_serialize(api_version.as_bytes()).collect::<String>();
    (
        format!("{base}/operations/{op}?api-version={q}"),
        format!("{base}/operationResults/{op}?api-version={q}"),
    )
}

/// Completes an operation: a PUT's resource becomes `Succeeded`, a DELETE's resource goes away
/// (and releases the public IPs its frontends held).
fn finalize(world: &mut World, op: &mut Op) {
    if op.done {
        return;
    }
    op.done = true;
    match op.method {
        Method::Put => {
            if let Some(r) = world.resources.get_mut(&op.resource_key) {
                let collections = collections_of(&r.type_);
                r.edit(|v| set_provisioning(v, "Succeeded", collections));
            }
        }
        Method::Delete => {
            if let Some(r) = world.resources.remove(&op.resource_key)
                && r.type_.eq_ignore_ascii_case(LB_TYPE)
            {
                follow_frontends(world, &frontend_pips(&r.value()), &[]);
            }
        }
    }
}

/// Completes every pending operation on a resource (a new write to it waits for them in Azure;
/// the mock simply finishes them first).
fn finish_pending(state: &MockState, world: &mut World, key: &str) {
    let mut ops = state.operations.lock().expect("operations lock");
    for op in ops.ops.values_mut() {
        if op.resource_key == key && !op.done {
            finalize(world, op);
        }
    }
}

/// Answers one PUT or DELETE and records it.
pub(crate) fn serve(state: &MockState, req: &WriteRequest<'_>) -> Reply {
    let mut rec = WriteRecord {
        method: req.method.as_str().into(),
        id: String::new(),
        status: 0,
        principal: req
            .principal
            .map(|p| p.label.clone())
            .unwrap_or_else(|| format!("unknown:{}", req.claims.oid)),
        code: None,
        if_match: req.if_match.map(str::to_string),
        etag_before: None,
        etag_after: None,
        operation: None,
    };
    let reply = serve_inner(state, req, &mut rec);
    rec.status = reply.status.as_u16();
    rec.code = error_code(&reply);
    state.stats.lock().expect("stats lock").writes.push(rec);
    reply
}

fn serve_inner(state: &MockState, req: &WriteRequest<'_>, rec: &mut WriteRecord) -> Reply {
    let Route::Get {
        sub,
        rg,
        provider,
        types,
    } = req.route
    else {
        rec.id = "(no resource)".into();
        return Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The mock writes resources only: PUT or DELETE .../providers/Microsoft.Network/{publicIPAddresses|loadBalancers|networkSecurityGroups}/{name}.",
        );
    };
    let path_id = routes::resource_id(sub, rg, provider, types);
    rec.id = path_id.clone();
    let type_names: Vec<&str> = types.iter().map(|(t, _)| t.as_str()).collect();
    let full_type = routes::canonical_type(provider, &type_names);
    let Some((canonical, collections)) = WRITABLE
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(&full_type))
        .map(|(t, c)| (*t, *c))
    else {
        return Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "The mock does not write {full_type}: it writes public IPs, load balancers and network security groups (sub-resources by a PUT of their parent)."
            ),
        );
    };

    let mut world = state.world.write().expect("world lock");
    let Some(world_sub) = view::find_subscription(&world, sub) else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        );
    };
    let action = format!("{canonical}/{}", req.method.verb());
    let allowed = req
        .principal
        .is_some_and(|p| p.can_access(&world_sub) && authz::allows(p, &action));
    if !allowed {
        return Reply::error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{path_id}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                if req.claims.appid.is_empty() {
                    &req.claims.oid
                } else {
                    &req.claims.appid
                },
                req.claims.oid
            ),
        );
    }
    let key = id_key(&path_id);
    let existing = world.resources.get(&key).cloned();
    let id = existing
        .as_ref()
        .map(|r| r.id.clone())
        .unwrap_or_else(|| path_id.clone());
    rec.id = id.clone();
    rec.etag_before = existing.as_ref().and_then(|r| etag_of(&r.value()));
    if existing.is_none() && view::resource_group(&world, sub, rg).is_none() {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        );
    }

    // Locks: ReadOnly refuses both, CanNotDelete only deletes.
    for lock in &state.config.locks {
        let applies = req.method == Method::Delete || lock.level() == crate::config::LockLevel::ReadOnly;
        if applies && covers(lock.scope(), &id) {
            return Reply::error(
                StatusCode::CONFLICT,
                "ScopeLocked",
                format!(
                    "The scope '{id}' cannot perform {} operation because following scope(s) are locked: '{}'. Please remove the lock and try again.",
                    req.method.verb(),
                    lock.scope()
                ),
            );
        }
    }

    finish_pending(state, &mut world, &key);
    let existing = world.resources.get(&key).cloned();
    let current_etag = existing.as_ref().and_then(|r| etag_of(&r.value()));
    if let Some(want) = req.if_match.map(str::trim) {
        let ok = match (&current_etag, want) {
            (_, "*") => existing.is_some(),
            (Some(have), w) => have == w,
            (None, _) => false,
        };
        if !ok {
            return Reply::error(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!(
                    "The condition specified using HTTP conditional header(s) is not met: If-Match {want} does not match the current ETag of {id} ({}).",
                    current_etag.as_deref().unwrap_or("the resource does not exist")
                ),
            );
        }
    }

    match req.method {
        Method::Put => put(state, req, rec, &mut world, &id, canonical, collections, existing),
        Method::Delete => delete(state, req, rec, &mut world, &id, canonical, existing),
    }
}

/// Starts an operation on `key` and returns its id.
fn start_op(state: &MockState, key: &str, method: Method) -> String {
    let id = uuid();
    state.operations.lock().expect("operations lock").ops.insert(
        id.clone(),
        Op {
            resource_key: key.to_string(),
            method,
            polls_left: state.config.writes.async_polls,
            done: false,
        },
    );
    id
}

fn with_retry_after(state: &MockState, reply: Reply) -> Reply {
    match state.config.writes.retry_after_seconds {
        0 => reply,
        s => reply.header("retry-after", s.to_string()),
    }
}

fn location_of(v: &Value, existing: Option<&ArmResource>) -> Option<String> {
    v.get("location")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| existing.and_then(|r| r.location().map(str::to_string)))
}

#[allow(clippy::too_many_arguments)]
fn put(
    state: &MockState,
    req: &WriteRequest<'_>,
    rec: &mut WriteRecord,
    world: &mut World,
    id: &str,
    canonical: &str,
    collections: &[&str],
    existing: Option<ArmResource>,
) -> Reply {
    let mut v: Value = match serde_json::from_slice(req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestFormat",
                "Cannot parse the request: the body must be a JSON object with the resource.",
            );
        }
    };
    if v.get("properties").is_some_and(|p| !p.is_object()) {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestFormat",
            "Cannot parse the request: 'properties' must be an object.",
        );
    }
    let Some(location) = location_of(&v, existing.as_ref()) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "LocationRequired",
            "The location property is required for this definition.",
        );
    };
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    let etag = new_etag();
    {
        let o = v.as_object_mut().expect("checked above");
        o.insert("id".into(), json!(id));
        o.insert("name".into(), json!(name));
        o.insert("type".into(), json!(canonical));
        o.insert("location".into(), json!(location));
        o.insert("etag".into(), json!(etag));
    }
    // Sub-resources: ids, types and the parent's ETag, as the Network RP returns them.
    let mut known: BTreeSet<String> = BTreeSet::new();
    if let Some(p) = props_mut(&mut v) {
        for c in collections {
            if let Some(Value::Array(items)) = p.get_mut(*c) {
                for item in items.iter_mut() {
                    let item_id = format!("{id}/{c}/{}", item_name(item));
                    known.insert(id_key(&item_id));
                    if let Some(o) = item.as_object_mut() {
                        o.insert("id".into(), json!(item_id));
                        o.insert("etag".into(), json!(etag));
                        o.insert("type".into(), json!(format!("{canonical}/{c}")));
                    }
                }
            }
        }
        // Read-only properties come from the server, whatever the body says.
        if canonical == PIP_TYPE {
            for k in ["ipConfiguration", "natGateway", "ipAddress"] {
                p.remove(k);
                if let Some(x) = existing
                    .as_ref()
                    .and_then(|r| r.value()["properties"].get(k).cloned())
                    && !x.is_null()
                {
                    p.insert(k.into(), x);
                }
            }
        }
        let guid = existing
            .as_ref()
            .and_then(|r| {
                r.value()["properties"]["resourceGuid"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(uuid);
        p.insert("resourceGuid".into(), json!(guid));
    }

    if canonical == LB_TYPE {
        // Every reference to this LB's own sub-resources must name one in the body.
        let lb_prefix = format!("{}/", id_key(id));
        for c in collections {
            for item in v["properties"][*c].as_array().cloned().unwrap_or_default() {
                let by = item["id"].as_str().unwrap_or_default().to_string();
                let mut refs = Vec::new();
                references(&item["properties"], &mut refs);
                for r in refs {
                    let k = id_key(&r);
                    if k.starts_with(&lb_prefix) && !known.contains(&k) {
                        return invalid_reference(&r, &by);
                    }
                }
                if *c == "frontendIPConfigurations"
                    && let Some(pip) = item["properties"]["publicIPAddress"]["id"].as_str()
                    && world.get(pip).is_none()
                {
                    return invalid_reference(pip, &by);
                }
            }
        }
        recompute_back_references(&mut v);
    }
    set_provisioning(&mut v, "Updating", collections);

    let key = id_key(id);
    let before = existing
        .as_ref()
        .map(|r| frontend_pips(&r.value()))
        .unwrap_or_default();
    if canonical == LB_TYPE {
        follow_frontends(world, &before, &frontend_pips(&v));
    }
    let created = existing.is_none();
    world.resources.insert(
        key.clone(),
        ArmResource::new(
            id.to_string(),
            canonical.to_string(),
            &v,
            existing.map(|r| r.source).unwrap_or_else(|| "mock-write".into()),
        ),
    );
    let op = start_op(state, &key, Method::Put);
    rec.etag_after = Some(etag);
    rec.operation = Some(op.clone());
    let sub = subscription_of(id);
    let (status_url, _) = operation_urls(req.arm_endpoint, &sub, &location, &op, req.api_version);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    with_retry_after(
        state,
        Reply::json(status, &v).header("azure-asyncoperation", status_url),
    )
}

/// The subscription segment of an id (`/subscriptions/{s}/...`).
fn subscription_of(id: &str) -> String {
    id.split('/').nth(2).unwrap_or_default().to_string()
}

/// A load balancer's read-only back-references (`loadBalancingRules` on frontends, pools and
/// probes), recomputed from its rules as ARM does, so a removed rule leaves no dangling id.
fn recompute_back_references(lb: &mut Value) {
    let rules: Vec<(String, Vec<String>)> = lb["properties"]["loadBalancingRules"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let mut refs = Vec::new();
                    references(&r["properties"], &mut refs);
                    (
                        r["id"].as_str().unwrap_or_default().to_string(),
                        refs.iter().map(|x| id_key(x)).collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for c in ["frontendIPConfigurations", "backendAddressPools", "probes"] {
        if let Some(Value::Array(items)) = lb["properties"].get_mut(c) {
            for item in items {
                let me = id_key(item["id"].as_str().unwrap_or_default());
                let using: Vec<Value> = rules
                    .iter()
                    .filter(|(_, refs)| refs.contains(&me))
                    .map(|(rid, _)| json!({"id": rid}))
                    .collect();
                if let Some(p) = props_mut(item) {
                    if using.is_empty() {
                        p.remove("loadBalancingRules");
                    } else {
                        p.insert("loadBalancingRules".into(), Value::Array(using));
                    }
                }
            }
        }
    }
}

fn delete(
    state: &MockState,
    req: &WriteRequest<'_>,
    rec: &mut WriteRecord,
    world: &mut World,
    id: &str,
    canonical: &str,
    existing: Option<ArmResource>,
) -> Reply {
    let Some(existing) = existing else {
        // ARM answers a DELETE of nothing with 204.
        return Reply {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Vec::new(),
            slow: None,
        };
    };
    if canonical == PIP_TYPE
        && let Some(holder) = pip_holder(world, &existing)
    {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "PublicIPAddressCannotBeDeleted",
            format!(
                "Public IP address {id} can not be deleted since it is still allocated to resource {holder}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip."
            ),
        );
    }
    if canonical == NSG_TYPE {
        let mut users = Vec::new();
        for k in ["subnets", "networkInterfaces"] {
            references(&existing.value()["properties"][k], &mut users);
        }
        if !users.is_empty() {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "InUseNetworkSecurityGroupCannotBeDeleted",
                format!(
                    "Network security group {id} cannot be deleted because it is in use by the following resources: {}. In order to delete the Network security group, remove the association with the resource(s).",
                    users.join(", ")
                ),
            );
        }
    }
    let key = id_key(id);
    let location = existing.location().unwrap_or("westeurope").to_string();
    if let Some(r) = world.resources.get_mut(&key) {
        let collections = collections_of(&r.type_);
        r.edit(|v| set_provisioning(v, "Deleting", collections));
    }
    let op = start_op(state, &key, Method::Delete);
    rec.operation = Some(op.clone());
    let sub = subscription_of(id);
    let (status_url, result_url) = operation_urls(req.arm_endpoint, &sub, &location, &op, req.api_version);
    with_retry_after(
        state,
        Reply {
            status: StatusCode::ACCEPTED,
            headers: Vec::new(),
            body: Vec::new(),
            slow: None,
        }
        .header("azure-asyncoperation", status_url)
        .header("location", result_url),
    )
}

/// A poll of an operation's status (`operations/{id}`) or result (`operationResults/{id}`).
pub(crate) fn poll(state: &MockState, route: &Route, api_version: &str, arm: &str) -> Reply {
    let Route::Operation {
        sub,
        location,
        id,
        result,
    } = route
    else {
        return Reply::error(StatusCode::NOT_FOUND, "NotFound", "No such operation.");
    };
    let mut world = state.world.write().expect("world lock");
    let mut ops = state.operations.lock().expect("operations lock");
    let Some(op) = ops
        .ops
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(id))
        .map(|(_, op)| op)
    else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation {id} was not found in location {location}."),
        );
    };
    if !op.done {
        if op.polls_left == 0 {
            finalize(&mut world, op);
        } else {
            op.polls_left -= 1;
        }
    }
    let in_progress = !op.done;
    let status = if in_progress { "InProgress" } else { "Succeeded" };
    let resource = world.resources.get(&op.resource_key).map(|r| r.value());
    let method = op.method;
    drop(ops);
    drop(world);
    if !result {
        let reply = Reply::json(StatusCode::OK, &json!({"name": id, "status": status}));
        return if in_progress {
            with_retry_after(state, reply)
        } else {
            reply
        };
    }
    if in_progress {
        let (_, result_url) = operation_urls(arm, sub, location, id, api_version);
        return with_retry_after(
            state,
            Reply {
                status: StatusCode::ACCEPTED,
                headers: Vec::new(),
                body: Vec::new(),
                slow: None,
            }
            .header("location", result_url),
        );
    }
    match (method, resource) {
        (Method::Put, Some(v)) => Reply::json(StatusCode::OK, &v),
        _ => Reply {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Vec::new(),
            slow: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_their_descendants_only() {
        let rg = "/subscriptions/s/resourceGroups/RG";
        assert!(covers(rg, "/subscriptions/s/resourcegroups/rg/providers/x/y/z"));
        assert!(covers(rg, "/subscriptions/s/resourceGroups/rg"));
        assert!(!covers(rg, "/subscriptions/s/resourceGroups/rg2/providers/x/y/z"));
    }

    #[test]
    fn back_references_follow_the_rules() {
        let lb_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/k";
        let mut lb = json!({"properties": {
            "frontendIPConfigurations": [
                {"id": format!("{lb_id}/frontendIPConfigurations/f1"), "properties": {"loadBalancingRules": [{"id": "stale"}]}},
                {"id": format!("{lb_id}/frontendIPConfigurations/f2"), "properties": {}}
            ],
            "probes": [{"id": format!("{lb_id}/probes/p"), "properties": {}}],
            "loadBalancingRules": [{"id": format!("{lb_id}/loadBalancingRules/r"), "properties": {
                "frontendIPConfiguration": {"id": format!("{lb_id}/frontendIPConfigurations/F2")},
                "probe": {"id": format!("{lb_id}/probes/p")}
            }}]
        }});
        recompute_back_references(&mut lb);
        assert!(
            lb["properties"]["frontendIPConfigurations"][0]["properties"]
                .get("loadBalancingRules")
                .is_none()
        );
        assert_eq!(
            lb["properties"]["frontendIPConfigurations"][1]["properties"]["loadBalancingRules"][0]["id"],
            format!("{lb_id}/loadBalancingRules/r")
        );
        assert_eq!(
            lb["properties"]["probes"][0]["properties"]["loadBalancingRules"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }
}
