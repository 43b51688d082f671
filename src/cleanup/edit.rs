//! Pure edits of raw ARM JSON for cleanup: what a load balancer or NSG looks like without the
//! sub-resources (or NSG destinations) a plan removes, the body to PUT, whether a target is still
//! there, and the digests that tell "changed by someone else" from "changed by this plan".
//!
//! Why digests and not only ETags: a plan often edits one load balancer several times (a stale
//! rule, then an orphaned frontend with its rules and probes). After the first PUT the LB has a
//! new ETag, yet nothing but the plan's own removals changed. So a parent is "unchanged since
//! the plan" when its ETag is the one audited, or when the parent as it is now, minus everything
//! the plan removes from it, has the same digest as the parent as audited minus the same
//! removals. A change by anyone else (a new rule, a tag, a pool member) changes that digest. The
//! same holds for a public IP whose association the plan's own frontend removal released.
//!
//! Digests ignore only what the server computes: `etag`, `provisioningState`, sub-resource
//! `id`/`type` (derived from names), the read-only back-references (`loadBalancingRules` on
//! frontends, pools and probes, `inboundNatRules`, `outboundRules`) and, for public IPs,
//! `ipConfiguration`; ARM ids are compared case-insensitively.
//!
//! Must not do I/O, and never removes anything that the caller did not name.

use std::collections::{BTreeMap, BTreeSet};

use azaudit_world::id_key;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Sub-resource collections of the parents cleanup edits (ARM's property names).
pub const LB_COLLECTIONS: &[&str] = &[
    "frontendIPConfigurations",
    "backendAddressPools",
    "loadBalancingRules",
    "probes",
    "inboundNatRules",
    "inboundNatPools",
    "outboundRules",
];
pub const NSG_COLLECTIONS: &[&str] = &["securityRules", "defaultSecurityRules"];

/// Read-only back-references ARM computes on sub-resources from the rules that use them.
const BACK_REFERENCES: &[&str] = &[
    "loadBalancingRules",
    "inboundNatRules",
    "inboundNatPools",
    "outboundRules",
    "outboundRule",
];

/// What a plan removes from one parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removals {
    /// Sub-resource ids (compared with [`id_key`]).
    pub items: BTreeSet<String>,
    /// NSG rule id key → destinations to take out of its `destinationAddressPrefixes`.
    pub destinations: BTreeMap<String, BTreeSet<String>>,
}

impl Removals {
    pub fn item(&mut self, id: &str) {
        self.items.insert(id_key(id));
    }

    pub fn destinations(&mut self, rule_id: &str, d: impl IntoIterator<Item = String>) {
        self.destinations.entry(id_key(rule_id)).or_default().extend(d);
    }
}

/// `(collection, name)` of a sub-resource id: its last two segments.
pub fn collection_and_name(id: &str) -> Option<(String, String)> {
    let mut it = id.trim_end_matches('/').rsplit('/');
    let name = it.next()?.to_string();
    let coll = it.next()?.to_string();
    Some((coll, name))
}

/// The parent (the top-level resource) of a sub-resource id: the id up to
/// `.../providers/<ns>/<type>/<name>`.
pub fn parent_of(id: &str) -> Option<String> {
    let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
    let p = segs.iter().position(|s| s.eq_ignore_ascii_case("providers"))?;
    if segs.len() < p + 6 {
        return None;
    }
    Some(format!("/{}", segs[..p + 4].join("/")))
}

fn item_id(parent_id: &str, coll: &str, item: &Value) -> String {
    match item.get("id").and_then(Value::as_str) {
        Some(id) => id_key(id),
        None => id_key(&format!(
            "{parent_id}/{coll}/{}",
            item.get("name").and_then(Value::as_str).unwrap_or_default()
        )),
    }
}

fn collection_mut<'a>(v: &'a mut Value, coll: &str) -> Option<&'a mut Vec<Value>> {
    v.get_mut("properties")?.get_mut(coll)?.as_array_mut()
}

/// The items of one collection.
pub fn items<'a>(v: &'a Value, coll: &str) -> &'a [Value] {
    v.get("properties")
        .and_then(|p| p.get(coll))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `true` when the sub-resource `id` is still in `parent`.
pub fn present(parent: &Value, parent_id: &str, id: &str) -> bool {
    let Some((coll, _)) = collection_and_name(id) else {
        return false;
    };
    let want = id_key(id);
    items(parent, &coll)
        .iter()
        .any(|i| item_id(parent_id, &coll, i) == want)
}

/// The destinations of an NSG rule item (plural list, else the singular prefix).
pub fn destinations(rule: &Value) -> Vec<String> {
    let p = rule.get("properties").unwrap_or(&Value::Null);
    let list: Vec<String> = p
        .get("destinationAddressPrefixes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    p.get("destinationAddressPrefix")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}

/// An NSG rule item of `parent` by id.
pub fn find_item<'a>(parent: &'a Value, parent_id: &str, id: &str) -> Option<&'a Value> {
    let (coll, _) = collection_and_name(id)?;
    let want = id_key(id);
    items(parent, &coll)
        .iter()
        .find(|i| item_id(parent_id, &coll, i) == want)
}

/// `parent` without the removed items and destinations. Removing what is already gone is a
/// no-op, so this is idempotent.
pub fn without(parent: &Value, parent_id: &str, r: &Removals) -> Value {
    let mut v = parent.clone();
    for coll in LB_COLLECTIONS.iter().chain(NSG_COLLECTIONS) {
        if let Some(list) = collection_mut(&mut v, coll) {
            list.retain(|i| !r.items.contains(&item_id(parent_id, coll, i)));
            for i in list.iter_mut() {
                let key = item_id(parent_id, coll, i);
                let Some(gone) = r.destinations.get(&key) else {
                    continue;
                };
                let Some(p) = i.get_mut("properties").and_then(Value::as_object_mut) else {
                    continue;
                };
                if let Some(Value::Array(a)) = p.get_mut("destinationAddressPrefixes") {
                    a.retain(|d| d.as_str().is_none_or(|s| !gone.contains(s)));
                }
                if p.get("destinationAddressPrefix")
                    .and_then(Value::as_str)
                    .is_some_and(|s| gone.contains(s))
                {
                    p.remove("destinationAddressPrefix");
                }
            }
        }
    }
    v
}

/// The body to PUT: the parent as read now, without the removals, without what only the server
/// sets (`etag`, `provisioningState`) and without the `loadBalancingRules` back-references the
/// removals make stale. Everything else (pool members, default rules, tags) is sent back as
/// read, so the PUT changes nothing but the removals.
pub fn put_body(parent: &Value, parent_id: &str, r: &Removals) -> Value {
    let mut v = without(parent, parent_id, r);
    if let Some(o) = v.as_object_mut() {
        o.remove("etag");
    }
    if let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("provisioningState");
        for coll in LB_COLLECTIONS.iter().chain(NSG_COLLECTIONS) {
            if let Some(Value::Array(list)) = p.get_mut(*coll) {
                for i in list.iter_mut() {
                    if let Some(o) = i.as_object_mut() {
                        o.remove("etag");
                    }
                    if let Some(ip) = i.get_mut("properties").and_then(Value::as_object_mut) {
                        ip.remove("provisioningState");
                        ip.remove("loadBalancingRules");
                    }
                }
            }
        }
    }
    v
}

/// Removes server-computed fields and lower-cases ARM ids, recursively.
fn normalise(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for k in ["etag", "provisioningState", "type", "resourceGuid"] {
                o.remove(k);
            }
            for x in o.values_mut() {
                normalise(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        Value::String(s)
            if s.get(..15)
                .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/")) =>
        {
            *s = s.to_ascii_lowercase();
        }
        _ => {}
    }
}

/// Drops the resource's own and its sub-resources' ids (they follow from the URL and names) and
/// the back-references from the items of the known collections.
fn normalise_items(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("name");
    }
    let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for coll in LB_COLLECTIONS.iter().chain(NSG_COLLECTIONS) {
        if let Some(Value::Array(list)) = p.get_mut(*coll) {
            for i in list.iter_mut() {
                if let Some(o) = i.as_object_mut() {
                    o.remove("id");
                }
                if let Some(ip) = i.get_mut("properties").and_then(Value::as_object_mut) {
                    for b in BACK_REFERENCES {
                        ip.remove(*b);
                    }
                }
            }
            // Order of items is not meaningful to ARM.
            list.sort_by_key(|i| {
                i.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            });
        }
    }
}

/// JSON with object keys sorted, whatever the map's own order.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&o[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Hex SHA-256 of a string.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of a parent (LB or NSG) minus the removals.
pub fn parent_digest(parent: &Value, parent_id: &str, r: &Removals) -> String {
    let mut v = without(parent, parent_id, r);
    normalise_items(&mut v);
    normalise(&mut v);
    sha256_hex(&canonical(&v))
}

/// The digest of a public IP, ignoring its association (which the plan's own frontend removal
/// changes).
pub fn pip_digest(pip: &Value) -> String {
    let mut v = pip.clone();
    if let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("ipConfiguration");
    }
    normalise_items(&mut v);
    normalise(&mut v);
    sha256_hex(&canonical(&v))
}

/// An empty JSON object (for bodies built from nothing).
pub fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LB: &str =
        "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/loadBalancers/kubernetes";

    fn lb() -> Value {
        json!({"id": LB, "etag": "W/\"1\"", "properties": {
            "provisioningState": "Succeeded",
            "frontendIPConfigurations": [
                {"name": "f1", "id": format!("{LB}/frontendIPConfigurations/f1"), "etag": "W/\"1\"",
                 "properties": {"loadBalancingRules": [{"id": format!("{LB}/loadBalancingRules/f1-TCP-80")}]}},
                {"name": "f2", "id": format!("{LB}/frontendIPConfigurations/f2"), "properties": {}}
            ],
            "loadBalancingRules": [{"name": "f1-TCP-80", "properties": {"frontendIPConfiguration": {"id": format!("{LB}/frontendIPConfigurations/f1")}}}],
            "backendAddressPools": [{"name": "kubernetes", "properties": {"backendIPConfigurations": [{"id": "/subscriptions/S/x"}]}}]
        }})
    }

    #[test]
    fn ids_split_into_parent_collection_and_name() {
        let id = format!("{LB}/frontendIPConfigurations/f1");
        assert_eq!(parent_of(&id).as_deref(), Some(LB));
        assert_eq!(
            collection_and_name(&id),
            Some(("frontendIPConfigurations".into(), "f1".into()))
        );
        assert_eq!(parent_of(LB), None);
    }

    #[test]
    fn removals_are_idempotent_and_keep_everything_else() {
        let mut r = Removals::default();
        r.item(&format!("{LB}/frontendIPConfigurations/F1"));
        r.item(&format!("{LB}/loadBalancingRules/f1-TCP-80"));
        let once = without(&lb(), LB, &r);
        assert_eq!(items(&once, "frontendIPConfigurations").len(), 1);
        assert!(items(&once, "loadBalancingRules").is_empty());
        assert_eq!(without(&once, LB, &r), once);
        assert!(!present(&once, LB, &format!("{LB}/frontendIPConfigurations/f1")));
        assert!(present(&once, LB, &format!("{LB}/frontendIPConfigurations/f2")));
        let body = put_body(&lb(), LB, &r);
        assert!(body.get("etag").is_none());
        assert_eq!(
            body["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"][0]["id"],
            "/subscriptions/S/x"
        );
    }

    #[test]
    fn digests_see_foreign_changes_but_not_the_plans_own() {
        let mut r = Removals::default();
        r.item(&format!("{LB}/frontendIPConfigurations/f1"));
        r.item(&format!("{LB}/loadBalancingRules/f1-TCP-80"));
        let audited = parent_digest(&lb(), LB, &r);
        // After the plan's own PUT: new ETags, Updating, sub-resource types added, ids re-cased.
        let mut after = put_body(&lb(), LB, &r);
        after["etag"] = json!("W/\"2\"");
        after["properties"]["provisioningState"] = json!("Updating");
        after["properties"]["frontendIPConfigurations"][0]["type"] = json!("x/y");
        after["properties"]["frontendIPConfigurations"][0]["id"] =
            json!(format!("{LB}/frontendIPConfigurations/f2").to_uppercase());
        assert_eq!(parent_digest(&after, LB, &r), audited);
        // Someone else's change (a new pool member) is a change.
        let mut foreign = after.clone();
        foreign["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "/subscriptions/S/y"}));
        assert_ne!(parent_digest(&foreign, LB, &r), audited);
    }

    #[test]
    fn nsg_destinations_are_removed_from_lists_only() {
        let nsg = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/networkSecurityGroups/n";
        let v = json!({"properties": {"securityRules": [
            {"name": "k8s-azure-lb_allow_IPv4_x", "properties": {"destinationAddressPrefixes": ["1.1.1.1", "2.2.2.2"]}}
        ]}});
        let mut r = Removals::default();
        r.destinations(
            &format!("{nsg}/securityRules/k8s-azure-lb_allow_IPv4_x"),
            ["2.2.2.2".to_string()],
        );
        let out = without(&v, nsg, &r);
        let rule = find_item(
            &out,
            nsg,
            &format!("{nsg}/securityRules/k8s-azure-lb_allow_IPv4_x"),
        )
        .unwrap();
        assert_eq!(destinations(rule), ["1.1.1.1"]);
    }

    #[test]
    fn pip_digest_ignores_the_association_only() {
        let a = json!({"etag": "1", "properties": {"ipAddress": "1.2.3.4", "ipConfiguration": {"id": "/x"}}, "tags": {"k": "v"}});
        let mut b = a.clone();
        b["etag"] = json!("2");
        b["properties"].as_object_mut().unwrap().remove("ipConfiguration");
        assert_eq!(pip_digest(&a), pip_digest(&b));
        b["tags"]["k"] = json!("w");
        assert_ne!(pip_digest(&a), pip_digest(&b));
    }
}
