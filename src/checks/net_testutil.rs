//! Test builders for the network rules (`nsg-blocks-service-port`, `quota-pressure`,
//! `basic-sku-retired`): small inline worlds of raw ARM / Kubernetes JSON, turned into an
//! inventory through the same path as offline audits. Generic on purpose, so other rule tests can
//! use them; test-only, never compiled into the binary.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::findings::Finding;
use crate::inventory::Inventory;

pub const SUB: &str = "00000000-0000-0000-0000-000000000001";
pub const RG: &str = "rg-c1";

/// `/subscriptions/SUB/resourceGroups/RG/providers/<provider>/<rest>`.
pub fn arm_id(provider_and_rest: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/{provider_and_rest}")
}

/// A world of `(relative path, JSON)` files → inventory.
pub fn inventory(files: Vec<(&str, Value)>) -> Inventory {
    let files = files
        .into_iter()
        .map(|(p, v)| (PathBuf::from(p), serde_json::to_vec(&v).expect("json")))
        .collect();
    let world = azaudit_world::World::from_files(files);
    crate::snapshot::inventory_from_world(&world)
}

/// `world.json` naming one cluster `c1` in SUB/RG with the given cluster-name tag.
pub fn world_json(cluster_name_tag: &str) -> Value {
    json!({
        "subscriptions": [{"id": SUB}],
        "clusters": [{"name": "c1", "cluster_name_tag": cluster_name_tag, "subscription_id": SUB, "resource_group": RG}]
    })
}

/// An ARM list page.
pub fn page(items: Vec<Value>) -> Value {
    json!({ "value": items })
}

/// A Kubernetes `List`.
pub fn k8s_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// An inbound NSG rule: `ports`/`src`/`dst` are single values or comma lists. The arguments are
/// the columns of `az network nsg rule list -o table`, in that order.
#[allow(clippy::too_many_arguments)]
pub fn nsg_rule(
    nsg_id: &str,
    name: &str,
    priority: u32,
    access: &str,
    proto: &str,
    src: &str,
    dst: &str,
    ports: &str,
) -> Value {
    let many = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
    let mut props = json!({
        "priority": priority, "direction": "Inbound", "access": access, "protocol": proto,
        "sourcePortRange": "*",
    });
    let p = props.as_object_mut().expect("object");
    if src.contains(',') {
        p.insert("sourceAddressPrefixes".into(), json!(many(src)));
    } else {
        p.insert("sourceAddressPrefix".into(), json!(src));
    }
    if dst.contains(',') {
        p.insert("destinationAddressPrefixes".into(), json!(many(dst)));
    } else {
        p.insert("destinationAddressPrefix".into(), json!(dst));
    }
    if ports.contains(',') {
        p.insert("destinationPortRanges".into(), json!(many(ports)));
    } else {
        p.insert("destinationPortRange".into(), json!(ports));
    }
    json!({"name": name, "id": format!("{nsg_id}/securityRules/{name}"), "properties": props})
}

pub fn nsg(name: &str, rules: Vec<Value>, subnet_ids: &[&str], nic_ids: &[&str]) -> Value {
    json!({
        "id": arm_id(&format!("Microsoft.Network/networkSecurityGroups/{name}")),
        "name": name, "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope",
        "properties": {
            "securityRules": rules,
            "subnets": subnet_ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>(),
            "networkInterfaces": nic_ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>(),
        }
    })
}

pub fn nsg_id(name: &str) -> String {
    arm_id(&format!("Microsoft.Network/networkSecurityGroups/{name}"))
}

/// A VNet with one subnet (optionally protected by an NSG).
pub fn vnet(
    name: &str,
    prefixes: &[&str],
    subnet: &str,
    subnet_prefix: &str,
    subnet_nsg: Option<&str>,
) -> Value {
    let id = arm_id(&format!("Microsoft.Network/virtualNetworks/{name}"));
    let mut sp = json!({"addressPrefix": subnet_prefix});
    if let Some(n) = subnet_nsg {
        sp["networkSecurityGroup"] = json!({"id": nsg_id(n)});
    }
    json!({
        "id": id, "name": name, "type": "Microsoft.Network/virtualNetworks", "location": "westeurope",
        "properties": {
            "addressSpace": {"addressPrefixes": prefixes},
            "subnets": [{"name": subnet, "id": format!("{id}/subnets/{subnet}"), "properties": sp}]
        }
    })
}

pub fn subnet_id(vnet: &str, subnet: &str) -> String {
    arm_id(&format!(
        "Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
    ))
}

pub fn vm_id(name: &str) -> String {
    arm_id(&format!("Microsoft.Compute/virtualMachines/{name}"))
}

pub fn nic_id(name: &str) -> String {
    arm_id(&format!("Microsoft.Network/networkInterfaces/{name}"))
}

/// A VM with one NIC `<name>-nic`.
pub fn vm(name: &str) -> Value {
    json!({
        "id": vm_id(name), "name": name, "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
        "properties": {
            "osProfile": {"computerName": name},
            "networkProfile": {"networkInterfaces": [{"id": nic_id(&format!("{name}-nic")), "properties": {"primary": true}}]}
        }
    })
}

/// The NIC of [`vm`]: one primary IP configuration in `subnet`, optional NIC NSG.
pub fn nic(vm_name: &str, ip: &str, subnet: &str, nsg: Option<&str>) -> Value {
    let id = nic_id(&format!("{vm_name}-nic"));
    let mut props = json!({
        "primary": true,
        "virtualMachine": {"id": vm_id(vm_name)},
        "ipConfigurations": [{
            "name": "ipconfig1", "id": format!("{id}/ipConfigurations/ipconfig1"),
            "properties": {"primary": true, "privateIPAddress": ip, "subnet": {"id": subnet}}
        }]
    });
    if let Some(n) = nsg {
        props["networkSecurityGroup"] = json!({"id": nsg_id(n)});
    }
    json!({"id": id, "name": format!("{vm_name}-nic"), "type": "Microsoft.Network/networkInterfaces", "location": "westeurope", "properties": props})
}

/// A Node whose providerID names `provider_id` (an ARM id) with one InternalIP.
pub fn node(name: &str, provider_arm_id: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": {"kubernetes.io/hostname": name}},
        "spec": {"providerID": format!("azure://{provider_arm_id}")},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}], "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// A LoadBalancer Service: `ports` as `(protocol, port, nodePort)`, ingress IPs, annotations,
/// `spec.loadBalancerSourceRanges`.
pub fn lb_service(
    ns: &str,
    name: &str,
    ports: &[(&str, u32, u32)],
    ingress: &[&str],
    annotations: &[(&str, &str)],
    source_ranges: &[&str],
) -> Value {
    let mut spec = json!({
        "type": "LoadBalancer",
        "ports": ports.iter().map(|(p, port, np)| json!({"protocol": p, "port": port, "nodePort": np})).collect::<Vec<_>>(),
    });
    if !source_ranges.is_empty() {
        spec["loadBalancerSourceRanges"] = json!(source_ranges);
    }
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "namespace": ns, "name": name, "uid": format!("0000{:0>4}-0000-4000-8000-000000000000", name.len()),
            "annotations": annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "spec": spec,
        "status": {"loadBalancer": {"ingress": ingress.iter().map(|i| json!({"ip": i})).collect::<Vec<_>>()}}
    })
}

/// A network usages row.
pub fn usage(location: &str, name: &str, current: f64, limit: f64) -> Value {
    json!({
        "id": format!("/subscriptions/{SUB}/providers/Microsoft.Network/locations/{location}/usages/{name}"),
        "name": {"value": name, "localizedValue": name},
        "currentValue": current, "limit": limit, "unit": "Count"
    })
}

/// `(rule, resource)` pairs, sorted, for compact assertions.
pub fn pairs(findings: &[Finding]) -> Vec<(String, String)> {
    let mut v: Vec<_> = findings
        .iter()
        .map(|f| (f.rule.to_string(), f.resource.clone()))
        .collect();
    v.sort();
    v
}
