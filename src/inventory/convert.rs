//! Raw ARM / Kubernetes JSON → inventory types. The only conversion code: live collection and
//! snapshots both go through [`InventoryBuilder`].
//!
//! Every converter is lenient (see [`super::json`]): an item without an `id` or `name` is skipped
//! with a note, anything else missing becomes `None` or empty.

use serde_json::Value;

use super::json::{arr_at, bool_at, f64_at, get, ids_at, map_at, str_at, strings_at, u32_at, u64_at};
use super::*;
use azaudit_world::ResourceId;

fn sku(v: &Value) -> Sku {
    match str_at(v, &["sku", "name"]) {
        Some(s) if s.eq_ignore_ascii_case("basic") => Sku::Basic,
        Some(s) if s.eq_ignore_ascii_case("standard") => Sku::Standard,
        Some(s) => Sku::Other(s),
        None => Sku::Unknown,
    }
}

struct Envelope {
    id: String,
    name: String,
    subscription: String,
    resource_group: String,
    location: Option<String>,
}

fn envelope(v: &Value) -> Result<Envelope, String> {
    let id = str_at(v, &["id"]).ok_or("no id")?;
    let parsed = ResourceId::parse(&id);
    let name = str_at(v, &["name"])
        .or_else(|| parsed.as_ref().and_then(|p| p.name().map(str::to_string)))
        .ok_or_else(|| format!("{id}: no name"))?;
    Ok(Envelope {
        subscription: parsed
            .as_ref()
            .and_then(|p| p.subscription.clone())
            .unwrap_or_default(),
        resource_group: parsed
            .as_ref()
            .and_then(|p| p.resource_group.clone())
            .unwrap_or_default(),
        location: str_at(v, &["location"]),
        id,
        name,
    })
}

/// Sub-resource id when the item has none (minimal examples): `<parent>/<kind>/<name>`.
fn sub_id(item: &Value, parent: &str, kind: &str) -> (String, String) {
    let name = str_at(item, &["name"]).unwrap_or_default();
    let id = str_at(item, &["id"]).unwrap_or_else(|| format!("{parent}/{kind}/{name}"));
    let name = if name.is_empty() {
        ResourceId::parse(&id)
            .and_then(|p| p.name().map(str::to_string))
            .unwrap_or_default()
    } else {
        name
    };
    (id, name)
}

pub fn load_balancer(v: &Value) -> Result<LoadBalancer, String> {
    let e = envelope(v)?;
    let p = get(v, "properties").cloned().unwrap_or(Value::Null);
    let frontends = arr_at(&p, &["frontendIPConfigurations"])
        .iter()
        .map(|f| {
            let (id, name) = sub_id(f, &e.id, "frontendIPConfigurations");
            Frontend {
                id,
                name,
                public_ip_id: str_at(f, &["properties", "publicIPAddress", "id"]),
                public_ip_prefix_id: str_at(f, &["properties", "publicIPPrefix", "id"]),
                private_ip: str_at(f, &["properties", "privateIPAddress"]),
                subnet_id: str_at(f, &["properties", "subnet", "id"]),
                rule_ids: ids_at(f, &["properties", "loadBalancingRules"]),
                outbound_rule_ids: ids_at(f, &["properties", "outboundRules"]),
                inbound_nat_rule_ids: ids_at(f, &["properties", "inboundNatRules"]),
            }
        })
        .collect();
    let pools = arr_at(&p, &["backendAddressPools"])
        .iter()
        .map(|b| {
            let (id, name) = sub_id(b, &e.id, "backendAddressPools");
            BackendPool {
                id,
                name,
                ip_config_ids: ids_at(b, &["properties", "backendIPConfigurations"]),
                addresses: arr_at(b, &["properties", "loadBalancerBackendAddresses"])
                    .iter()
                    .map(|a| PoolAddress {
                        name: str_at(a, &["name"]),
                        ip_address: str_at(a, &["properties", "ipAddress"]),
                        nic_ip_config_id: str_at(a, &["properties", "networkInterfaceIPConfiguration", "id"]),
                    })
                    .collect(),
                virtual_network_id: str_at(b, &["properties", "virtualNetwork", "id"]),
            }
        })
        .collect();
    let rules = arr_at(&p, &["loadBalancingRules"])
        .iter()
        .map(|r| {
            let (id, name) = sub_id(r, &e.id, "loadBalancingRules");
            let mut pools = ids_at(r, &["properties", "backendAddressPools"]);
            if let Some(one) = str_at(r, &["properties", "backendAddressPool", "id"])
                && !pools.iter().any(|x| x.eq_ignore_ascii_case(&one))
            {
                pools.push(one);
            }
            LbRule {
                id,
                name,
                frontend_id: str_at(r, &["properties", "frontendIPConfiguration", "id"]),
                backend_pool_ids: pools,
                probe_id: str_at(r, &["properties", "probe", "id"]),
                protocol: str_at(r, &["properties", "protocol"]).unwrap_or_default(),
                frontend_port: u32_at(r, &["properties", "frontendPort"]),
                backend_port: u32_at(r, &["properties", "backendPort"]),
            }
        })
        .collect();
    let probes = arr_at(&p, &["probes"])
        .iter()
        .map(|r| {
            let (id, name) = sub_id(r, &e.id, "probes");
            Probe {
                id,
                name,
                protocol: str_at(r, &["properties", "protocol"]).unwrap_or_default(),
                port: u32_at(r, &["properties", "port"]),
                request_path: str_at(r, &["properties", "requestPath"]),
            }
        })
        .collect();
    Ok(LoadBalancer {
        sku: sku(v),
        etag: str_at(v, &["etag"]),
        tags: map_at(v, &["tags"]),
        frontends,
        pools,
        rules,
        probes,
        inbound_nat_rule_count: arr_at(&p, &["inboundNatRules"]).len(),
        outbound_rule_count: arr_at(&p, &["outboundRules"]).len(),
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

pub fn public_ip(v: &Value) -> Result<PublicIp, String> {
    let e = envelope(v)?;
    Ok(PublicIp {
        sku: sku(v),
        etag: str_at(v, &["etag"]),
        tags: map_at(v, &["tags"]),
        ip_address: str_at(v, &["properties", "ipAddress"]),
        ip_configuration_id: str_at(v, &["properties", "ipConfiguration", "id"]),
        nat_gateway_id: str_at(v, &["properties", "natGateway", "id"]),
        prefix_id: str_at(v, &["properties", "publicIPPrefix", "id"]),
        dns_label: str_at(v, &["properties", "dnsSettings", "domainNameLabel"]),
        fqdn: str_at(v, &["properties", "dnsSettings", "fqdn"]),
        version: str_at(v, &["properties", "publicIPAddressVersion"]),
        allocation: str_at(v, &["properties", "publicIPAllocationMethod"]),
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

/// `xxxPrefix` + `xxxPrefixes`, as NSG rules carry either.
fn one_or_many(r: &Value, one: &str, many: &str) -> Vec<String> {
    let mut out = strings_at(r, &["properties", many]);
    if let Some(s) = str_at(r, &["properties", one])
        && !out.contains(&s)
    {
        out.insert(0, s);
    }
    out
}

fn security_rule(r: &Value, parent: &str, kind: &str, is_default: bool) -> SecurityRule {
    let (id, name) = sub_id(r, parent, kind);
    SecurityRule {
        id,
        name,
        priority: u32_at(r, &["properties", "priority"]),
        direction: str_at(r, &["properties", "direction"]).unwrap_or_default(),
        access: str_at(r, &["properties", "access"]).unwrap_or_default(),
        protocol: str_at(r, &["properties", "protocol"]).unwrap_or_else(|| "*".into()),
        source_prefixes: one_or_many(r, "sourceAddressPrefix", "sourceAddressPrefixes"),
        source_ports: one_or_many(r, "sourcePortRange", "sourcePortRanges"),
        destination_prefixes: one_or_many(r, "destinationAddressPrefix", "destinationAddressPrefixes"),
        destination_ports: one_or_many(r, "destinationPortRange", "destinationPortRanges"),
        is_default,
    }
}

pub fn nsg(v: &Value) -> Result<Nsg, String> {
    let e = envelope(v)?;
    let p = get(v, "properties").cloned().unwrap_or(Value::Null);
    Ok(Nsg {
        etag: str_at(v, &["etag"]),
        rules: arr_at(&p, &["securityRules"])
            .iter()
            .map(|r| security_rule(r, &e.id, "securityRules", false))
            .collect(),
        default_rules: arr_at(&p, &["defaultSecurityRules"])
            .iter()
            .map(|r| security_rule(r, &e.id, "defaultSecurityRules", true))
            .collect(),
        subnet_ids: ids_at(&p, &["subnets"]),
        nic_ids: ids_at(&p, &["networkInterfaces"]),
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

pub fn nic(v: &Value) -> Result<Nic, String> {
    let e = envelope(v)?;
    let ip_configs = arr_at(v, &["properties", "ipConfigurations"])
        .iter()
        .map(|c| {
            let (id, name) = sub_id(c, &e.id, "ipConfigurations");
            NicIpConfig {
                id,
                name,
                private_ip: str_at(c, &["properties", "privateIPAddress"]),
                version: str_at(c, &["properties", "privateIPAddressVersion"]),
                primary: bool_at(c, &["properties", "primary"]).unwrap_or(false),
                subnet_id: str_at(c, &["properties", "subnet", "id"]),
                public_ip_id: str_at(c, &["properties", "publicIPAddress", "id"]),
                backend_pool_ids: ids_at(c, &["properties", "loadBalancerBackendAddressPools"]),
            }
        })
        .collect();
    Ok(Nic {
        vm_id: str_at(v, &["properties", "virtualMachine", "id"]),
        nsg_id: str_at(v, &["properties", "networkSecurityGroup", "id"]),
        primary: bool_at(v, &["properties", "primary"]).unwrap_or(false),
        ip_configs,
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

pub fn vm(v: &Value) -> Result<Vm, String> {
    let e = envelope(v)?;
    Ok(Vm {
        computer_name: str_at(v, &["properties", "osProfile", "computerName"]),
        nic_ids: ids_at(v, &["properties", "networkProfile", "networkInterfaces"]),
        availability_set_id: str_at(v, &["properties", "availabilitySet", "id"]),
        vmss_id: str_at(v, &["properties", "virtualMachineScaleSet", "id"]),
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

pub fn vmss(v: &Value) -> Result<Vmss, String> {
    let e = envelope(v)?;
    Ok(Vmss {
        orchestration_mode: str_at(v, &["properties", "orchestrationMode"]),
        capacity: u64_at(v, &["sku", "capacity"]),
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

pub fn vmss_vm(v: &Value) -> Result<VmssVm, String> {
    let id = str_at(v, &["id"]).ok_or("no id")?;
    let parsed = ResourceId::parse(&id).ok_or_else(|| format!("{id}: not an ARM id"))?;
    let vmss_id = parsed
        .top_level()
        .ok_or_else(|| format!("{id}: no scale set in id"))?;
    let instance_id = str_at(v, &["instanceId"])
        .or_else(|| parsed.child("virtualMachines").map(str::to_string))
        .ok_or_else(|| format!("{id}: no instance id"))?;
    Ok(VmssVm {
        name: str_at(v, &["name"]).unwrap_or_else(|| instance_id.clone()),
        computer_name: str_at(v, &["properties", "osProfile", "computerName"]),
        location: str_at(v, &["location"]),
        id,
        vmss_id,
        instance_id,
    })
}

pub fn vnet(v: &Value) -> Result<Vnet, String> {
    let e = envelope(v)?;
    let subnets = arr_at(v, &["properties", "subnets"])
        .iter()
        .map(|s| {
            let (id, name) = sub_id(s, &e.id, "subnets");
            let mut prefixes = strings_at(s, &["properties", "addressPrefixes"]);
            if let Some(p) = str_at(s, &["properties", "addressPrefix"]) {
                prefixes.insert(0, p);
            }
            Subnet {
                id,
                name,
                prefixes,
                nsg_id: str_at(s, &["properties", "networkSecurityGroup", "id"]),
            }
        })
        .collect();
    Ok(Vnet {
        address_prefixes: strings_at(v, &["properties", "addressSpace", "addressPrefixes"]),
        subnets,
        id: e.id,
        name: e.name,
        subscription: e.subscription,
        resource_group: e.resource_group,
        location: e.location,
    })
}

/// A usages row. Location and subscription come from the id
/// (`/subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/usages/{name}`), or from the
/// list request (`fallback`) when the id lacks them.
pub fn usage(v: &Value, fallback: Option<(&str, &str)>) -> Result<Usage, String> {
    let name = str_at(v, &["name", "value"]).ok_or("usage without name.value")?;
    let id = str_at(v, &["id"]).unwrap_or_default();
    let parsed = ResourceId::parse(&id);
    let subscription = parsed
        .as_ref()
        .and_then(|p| p.subscription.clone())
        .or(fallback.map(|f| f.0.to_string()))
        .ok_or_else(|| format!("usage {name}: no subscription"))?;
    let location = parsed
        .as_ref()
        .and_then(|p| p.child("locations").map(str::to_string))
        .or(fallback.map(|f| f.1.to_string()))
        .ok_or_else(|| format!("usage {name}: no location"))?;
    let id = if id.is_empty() {
        format!(
            "/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}/usages/{name}"
        )
    } else {
        id
    };
    Ok(Usage {
        localized_name: str_at(v, &["name", "localizedValue"]),
        current: f64_at(v, &["currentValue"]).ok_or_else(|| format!("usage {name}: no currentValue"))?,
        limit: f64_at(v, &["limit"]).ok_or_else(|| format!("usage {name}: no limit"))?,
        id,
        subscription,
        location,
        name,
    })
}

fn meta(v: &Value) -> Result<Meta, String> {
    let name = str_at(v, &["metadata", "name"]).ok_or("object without metadata.name")?;
    Ok(Meta {
        namespace: str_at(v, &["metadata", "namespace"]),
        name,
        uid: str_at(v, &["metadata", "uid"]),
        labels: map_at(v, &["metadata", "labels"]),
        annotations: map_at(v, &["metadata", "annotations"]),
        creation_timestamp: str_at(v, &["metadata", "creationTimestamp"]),
        deletion_timestamp: str_at(v, &["metadata", "deletionTimestamp"]),
    })
}

pub fn service(v: &Value) -> Result<Service, String> {
    let mut m = meta(v)?;
    if m.namespace.is_none() {
        m.namespace = Some("default".into());
    }
    let mut cluster_ips = strings_at(v, &["spec", "clusterIPs"]);
    if let Some(ip) = str_at(v, &["spec", "clusterIP"])
        && !cluster_ips.contains(&ip)
    {
        cluster_ips.insert(0, ip);
    }
    let ingress = arr_at(v, &["status", "loadBalancer", "ingress"]);
    Ok(Service {
        type_: str_at(v, &["spec", "type"]).unwrap_or_else(|| "ClusterIP".into()),
        ports: arr_at(v, &["spec", "ports"])
            .iter()
            .filter_map(|p| {
                Some(ServicePort {
                    name: str_at(p, &["name"]),
                    protocol: str_at(p, &["protocol"]).unwrap_or_else(|| "TCP".into()),
                    port: u32_at(p, &["port"])?,
                    node_port: u32_at(p, &["nodePort"]),
                })
            })
            .collect(),
        cluster_ips,
        ip_families: strings_at(v, &["spec", "ipFamilies"]),
        external_traffic_policy: str_at(v, &["spec", "externalTrafficPolicy"]),
        health_check_node_port: u32_at(v, &["spec", "healthCheckNodePort"]),
        load_balancer_ip: str_at(v, &["spec", "loadBalancerIP"]),
        load_balancer_source_ranges: strings_at(v, &["spec", "loadBalancerSourceRanges"]),
        ingress_ips: ingress.iter().filter_map(|i| str_at(i, &["ip"])).collect(),
        ingress_hostnames: ingress.iter().filter_map(|i| str_at(i, &["hostname"])).collect(),
        load_balancer_class: str_at(v, &["spec", "loadBalancerClass"]),
        meta: m,
    })
}

pub fn node(v: &Value) -> Result<Node, String> {
    let m = meta(v)?;
    let internal_ips = arr_at(v, &["status", "addresses"])
        .iter()
        .filter(|a| str_at(a, &["type"]).as_deref() == Some("InternalIP"))
        .filter_map(|a| str_at(a, &["address"]))
        .collect();
    let ready = arr_at(v, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]).as_deref() == Some("Ready"))
        .and_then(|c| str_at(c, &["status"]))
        .map(|s| s == "True");
    Ok(Node {
        provider_id: str_at(v, &["spec", "providerID"]),
        internal_ips,
        taints: arr_at(v, &["spec", "taints"])
            .iter()
            .filter_map(|t| {
                Some(Taint {
                    key: str_at(t, &["key"])?,
                    value: str_at(t, &["value"]),
                    effect: str_at(t, &["effect"]).unwrap_or_default(),
                })
            })
            .collect(),
        ready,
        unschedulable: bool_at(v, &["spec", "unschedulable"]).unwrap_or(false),
        meta: m,
    })
}

pub fn endpoint_slice(v: &Value) -> Result<EndpointSlice, String> {
    let m = meta(v)?;
    let eps = arr_at(v, &["endpoints"]);
    // An endpoint with no `ready` condition is ready (EndpointSlice API: nil means unknown, and
    // consumers "should interpret this as ready").
    let ready = eps
        .iter()
        .filter(|e| bool_at(e, &["conditions", "ready"]).unwrap_or(true))
        .count();
    Ok(EndpointSlice {
        service_name: m.labels.get("kubernetes.io/service-name").cloned(),
        ready_endpoints: ready,
        total_endpoints: eps.len(),
        meta: m,
    })
}

pub fn pod(v: &Value) -> Result<Pod, String> {
    let m = meta(v)?;
    let ready = arr_at(v, &["status", "conditions"]).iter().any(|c| {
        str_at(c, &["type"]).as_deref() == Some("Ready") && str_at(c, &["status"]).as_deref() == Some("True")
    });
    let statuses = arr_at(v, &["status", "containerStatuses"]);
    Ok(Pod {
        phase: str_at(v, &["status", "phase"]),
        ready,
        waiting_reason: statuses
            .iter()
            .find_map(|s| str_at(s, &["state", "waiting", "reason"])),
        restarts: statuses.iter().filter_map(|s| u64_at(s, &["restartCount"])).sum(),
        meta: m,
    })
}

/// Assembles an [`Inventory`] from raw objects, wherever they came from.
#[derive(Default)]
pub struct InventoryBuilder {
    inv: Inventory,
}

impl InventoryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn note(&mut self, what: &str, err: String) {
        self.inv.notes.push(format!("skipped a {what}: {err}"));
    }

    /// Adds one raw ARM object of the given kind. `usage_scope` is the (subscription, location)
    /// of the list it came from, for usage rows.
    pub fn add_arm(&mut self, kind: ArmKind, v: &Value, usage_scope: Option<(&str, &str)>) {
        let inv = &mut self.inv;
        let r = match kind {
            ArmKind::LoadBalancers => load_balancer(v).map(|x| inv.load_balancers.push(x)),
            ArmKind::PublicIpAddresses => public_ip(v).map(|x| inv.public_ips.push(x)),
            ArmKind::NetworkSecurityGroups => nsg(v).map(|x| inv.nsgs.push(x)),
            ArmKind::NetworkInterfaces => nic(v).map(|x| inv.nics.push(x)),
            ArmKind::VirtualMachines => vm(v).map(|x| inv.vms.push(x)),
            ArmKind::VirtualMachineScaleSets => vmss(v).map(|x| inv.vmss.push(x)),
            ArmKind::VmssVirtualMachines => vmss_vm(v).map(|x| inv.vmss_vms.push(x)),
            ArmKind::VirtualNetworks => vnet(v).map(|x| inv.vnets.push(x)),
            ArmKind::Usages => usage(v, usage_scope).map(|x| inv.usages.push(x)),
            ArmKind::ResourceGroups => Ok(()),
        };
        if let Err(e) = r {
            self.note(kind.arm_type(), e);
        }
    }

    pub fn add_subscription(&mut self, s: &str) {
        self.inv.subscriptions.push(s.to_string());
    }

    pub fn add_cluster(&mut self, c: Cluster) {
        self.inv.clusters.push(c);
    }

    /// Converts raw Kubernetes objects (each with `kind`) into the cluster's lists.
    pub fn fill_cluster(&mut self, cluster: &mut Cluster, objects: &[Value]) {
        for o in objects {
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
            let r = match kind {
                "Service" => service(o).map(|x| cluster.services.push(x)),
                "Node" => node(o).map(|x| cluster.nodes.push(x)),
                "EndpointSlice" => endpoint_slice(o).map(|x| cluster.endpoint_slices.push(x)),
                "Pod" => pod(o).map(|x| cluster.pods.push(x)),
                _ => Ok(()),
            };
            if let Err(e) = r {
                self.note(kind, format!("{}: {e}", cluster.name));
            }
        }
    }

    pub fn add_gap(&mut self, gap: Gap) {
        self.inv.gaps.push(gap);
    }

    pub fn finish(mut self) -> Inventory {
        self.inv.sort();
        self.inv
    }
}
