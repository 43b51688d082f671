//! ARM JSON for single resources, shaped like the recorded responses and spec examples in
//! `shared/fixtures/` (`properties` nesting, `etag`, `provisioningState`, `sku`, ARM id casing).
//!
//! Builders only: they take everything they print as arguments and decide nothing about the
//! world (no planting, no findings), so cluster resources and the unrelated bulk resources look
//! alike.

use rand::Rng;
use serde_json::{Map, Value, json};

use super::names::{etag, res_id, uuid};

pub const T_LB: &str = "Microsoft.Network/loadBalancers";
pub const T_PIP: &str = "Microsoft.Network/publicIPAddresses";
pub const T_NSG: &str = "Microsoft.Network/networkSecurityGroups";
pub const T_NIC: &str = "Microsoft.Network/networkInterfaces";
pub const T_VNET: &str = "Microsoft.Network/virtualNetworks";
pub const T_VM: &str = "Microsoft.Compute/virtualMachines";
pub const T_VMSS: &str = "Microsoft.Compute/virtualMachineScaleSets";
pub const T_AVSET: &str = "Microsoft.Compute/availabilitySets";
pub const T_NATGW: &str = "Microsoft.Network/natGateways";
pub const T_PREFIX: &str = "Microsoft.Network/publicIPPrefixes";

/// `{"id": id}`.
pub fn id_ref(id: &str) -> Value {
    json!({ "id": id })
}

pub fn id_refs<'a>(ids: impl IntoIterator<Item = &'a String>) -> Value {
    Value::Array(ids.into_iter().map(|i| id_ref(i)).collect())
}

/// A public IP address (`PublicIpAddressListAll`, recorded `publicipaddressclient` bodies).
pub struct PipSpec<'a> {
    pub sub: &'a str,
    pub rg: &'a str,
    pub name: &'a str,
    pub location: &'a str,
    pub ip: &'a str,
    pub ipv6: bool,
    pub basic: bool,
    pub tags: Option<Map<String, Value>>,
    /// `ipConfiguration.id` (an LB frontend or a NIC ip configuration).
    pub attached_to: Option<String>,
    pub nat_gateway: Option<String>,
    pub prefix: Option<String>,
    /// `dnsSettings.domainNameLabel` (the FQDN is derived from the location).
    pub dns_label: Option<&'a str>,
}

pub fn pip(rng: &mut impl Rng, s: PipSpec) -> Value {
    let mut props = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": uuid(rng),
        "ipAddress": s.ip,
        "publicIPAddressVersion": if s.ipv6 { "IPv6" } else { "IPv4" },
        "publicIPAllocationMethod": "Static",
        "idleTimeoutInMinutes": 4,
        "ipTags": [],
    });
    let p = props.as_object_mut().expect("object literal");
    if !s.basic {
        p.insert(
            "ddosSettings".into(),
            json!({"protectionMode": "VirtualNetworkInherited"}),
        );
    }
    if let Some(a) = s.attached_to {
        p.insert("ipConfiguration".into(), id_ref(&a));
    }
    if let Some(n) = s.nat_gateway {
        p.insert("natGateway".into(), id_ref(&n));
    }
    if let Some(x) = s.prefix {
        p.insert("publicIPPrefix".into(), id_ref(&x));
    }
    if let Some(l) = s.dns_label {
        p.insert(
            "dnsSettings".into(),
            json!({"domainNameLabel": l, "fqdn": format!("{l}.{}.cloudapp.azure.com", s.location)}),
        );
    }
    let mut v = json!({
        "name": s.name,
        "id": res_id(s.sub, s.rg, T_PIP, s.name),
        "etag": etag(rng),
        "location": s.location,
        "type": T_PIP,
        "sku": {"name": if s.basic { "Basic" } else { "Standard" }, "tier": "Regional"},
        "properties": props,
    });
    if let Some(t) = s.tags {
        v["tags"] = Value::Object(t);
    }
    if !s.basic {
        v["zones"] = json!(["1", "2", "3"]);
    }
    v
}

/// A standalone NIC with one IPv4 configuration `ipconfig1` (recorded `interfaceclient` bodies).
pub struct NicSpec<'a> {
    pub sub: &'a str,
    pub rg: &'a str,
    pub name: &'a str,
    pub location: &'a str,
    pub ip: &'a str,
    pub subnet_id: &'a str,
    pub vm_id: Option<String>,
    pub pools: Vec<String>,
    pub pip_id: Option<String>,
}

pub fn nic(rng: &mut impl Rng, s: NicSpec) -> Value {
    let id = res_id(s.sub, s.rg, T_NIC, s.name);
    let mut ipc = json!({
        "provisioningState": "Succeeded",
        "privateIPAddress": s.ip,
        "privateIPAllocationMethod": "Dynamic",
        "subnet": id_ref(s.subnet_id),
        "primary": true,
        "privateIPAddressVersion": "IPv4",
    });
    if !s.pools.is_empty() {
        ipc["loadBalancerBackendAddressPools"] = id_refs(&s.pools);
    }
    if let Some(p) = &s.pip_id {
        ipc["publicIPAddress"] = id_ref(p);
    }
    let mut props = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": uuid(rng),
        "ipConfigurations": [{
            "name": "ipconfig1",
            "id": format!("{id}/ipConfigurations/ipconfig1"),
            "etag": etag(rng),
            "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
            "properties": ipc,
        }],
        "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
        "macAddress": mac(rng),
        "enableAcceleratedNetworking": true,
        "enableIPForwarding": false,
        "primary": true,
        "nicType": "Standard",
    });
    if let Some(vm) = s.vm_id {
        props["virtualMachine"] = id_ref(&vm);
    }
    json!({
        "name": s.name,
        "id": id,
        "etag": etag(rng),
        "type": T_NIC,
        "location": s.location,
        "kind": "Regular",
        "properties": props,
    })
}

fn mac(rng: &mut impl Rng) -> String {
    let b: [u8; 5] = rng.r#gen();
    format!("00-0D-{:02X}-{:02X}-{:02X}-{:02X}", b[0], b[1], b[2], b[3])
}

/// A VM (`VirtualMachine_Get`): `osProfile.computerName` = the VM name (VMAS hostnames are VM
/// names, domain.md §3.3).
pub struct VmSpec<'a> {
    pub sub: &'a str,
    pub rg: &'a str,
    pub name: &'a str,
    pub location: &'a str,
    pub size: &'a str,
    pub nic_id: &'a str,
    pub avset_id: Option<String>,
    pub created: &'a str,
    pub tags: Option<Value>,
}

pub fn vm(rng: &mut impl Rng, s: VmSpec) -> Value {
    let id = res_id(s.sub, s.rg, T_VM, s.name);
    let mut props = json!({
        "vmId": uuid(rng),
        "hardwareProfile": {"vmSize": s.size},
        "storageProfile": {
            "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
            "osDisk": {
                "osType": "Linux",
                "name": format!("{}_OsDisk_1", s.name),
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {
                    "storageAccountType": "Premium_LRS",
                    "id": res_id(s.sub, &s.rg.to_uppercase(), "Microsoft.Compute/disks", &format!("{}_OsDisk_1", s.name)),
                },
                "diskSizeGB": 128,
            },
            "dataDisks": [],
        },
        "osProfile": {
            "computerName": s.name,
            "adminUsername": "azureuser",
            "linuxConfiguration": {"disablePasswordAuthentication": true, "provisionVMAgent": true},
            "secrets": [],
            "allowExtensionOperations": true,
        },
        "networkProfile": {"networkInterfaces": [{"id": s.nic_id, "properties": {"primary": true}}]},
        "provisioningState": "Succeeded",
        "timeCreated": s.created,
    });
    if let Some(a) = s.avset_id {
        // ARM returns availability set ids upper-cased.
        props["availabilitySet"] = id_ref(&a.to_uppercase());
    }
    let mut v = json!({
        "name": s.name,
        "id": id,
        "type": T_VM,
        "location": s.location,
        "properties": props,
    });
    if let Some(t) = s.tags {
        v["tags"] = t;
    }
    v
}

/// A virtual network with its subnets `(name, prefix, nsg id)`.
pub fn vnet(
    rng: &mut impl Rng,
    sub: &str,
    rg: &str,
    name: &str,
    location: &str,
    space: &str,
    subnets: &[(&str, String, Option<String>)],
) -> Value {
    let id = res_id(sub, rg, T_VNET, name);
    let subnets: Vec<Value> = subnets
        .iter()
        .map(|(sn, prefix, nsg)| {
            let mut p = json!({
                "provisioningState": "Succeeded",
                "addressPrefix": prefix,
                "privateEndpointNetworkPolicies": "Disabled",
                "privateLinkServiceNetworkPolicies": "Enabled",
            });
            if let Some(n) = nsg {
                p["networkSecurityGroup"] = id_ref(n);
            }
            json!({
                "name": sn,
                "id": format!("{id}/subnets/{sn}"),
                "etag": etag(rng),
                "type": "Microsoft.Network/virtualNetworks/subnets",
                "properties": p,
            })
        })
        .collect();
    json!({
        "name": name,
        "id": id,
        "etag": etag(rng),
        "type": T_VNET,
        "location": location,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": uuid(rng),
            "addressSpace": {"addressPrefixes": [space]},
            "subnets": subnets,
            "virtualNetworkPeerings": [],
            "enableDdosProtection": false,
        },
    })
}

pub fn resource_group(
    sub: &str,
    rg: &str,
    location: &str,
    managed_by: Option<&str>,
    tags: Option<Value>,
) -> Value {
    let mut v = json!({
        "id": super::names::rg_id(sub, rg),
        "name": rg,
        "type": "Microsoft.Resources/resourceGroups",
        "location": location,
        "properties": {"provisioningState": "Succeeded"},
    });
    if let Some(m) = managed_by {
        v["managedBy"] = json!(m);
    }
    if let Some(t) = tags {
        v["tags"] = t;
    }
    v
}

/// A security rule (`NetworkSecurityGroupGet`, and the provider's `securityrule.go` shapes: one
/// destination goes to `destinationAddressPrefix`, several to `destinationAddressPrefixes`).
pub struct RuleSpec<'a> {
    pub nsg_id: &'a str,
    pub name: &'a str,
    pub priority: u32,
    pub access: &'a str,
    pub protocol: &'a str,
    pub source: &'a str,
    pub destinations: Vec<String>,
    pub ports: Vec<String>,
}

pub fn security_rule(rng: &mut impl Rng, s: RuleSpec) -> Value {
    let mut p = json!({
        "provisioningState": "Succeeded",
        "protocol": s.protocol,
        "sourcePortRange": "*",
        "sourceAddressPrefix": s.source,
        "access": s.access,
        "priority": s.priority,
        "direction": "Inbound",
        "sourcePortRanges": [],
        "sourceAddressPrefixes": [],
    });
    if s.destinations.len() == 1 {
        p["destinationAddressPrefix"] = json!(s.destinations[0]);
        p["destinationAddressPrefixes"] = json!([]);
    } else {
        p["destinationAddressPrefixes"] = json!(s.destinations);
    }
    if s.ports.len() == 1 && s.ports[0] == "*" {
        p["destinationPortRange"] = json!("*");
        p["destinationPortRanges"] = json!([]);
    } else {
        p["destinationPortRanges"] = json!(s.ports);
    }
    json!({
        "name": s.name,
        "id": format!("{}/securityRules/{}", s.nsg_id, s.name),
        "etag": etag(rng),
        "type": "Microsoft.Network/networkSecurityGroups/securityRules",
        "properties": p,
    })
}

/// The six default rules every NSG reports (recorded `securitygroupclient` bodies).
pub fn default_security_rules(rng: &mut impl Rng, nsg_id: &str) -> Value {
    let rows = [
        (
            "AllowVnetInBound",
            "Allow inbound traffic from all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Inbound",
        ),
        (
            "AllowAzureLoadBalancerInBound",
            "Allow inbound traffic from azure load balancer",
            "AzureLoadBalancer",
            "*",
            "Allow",
            65001,
            "Inbound",
        ),
        (
            "DenyAllInBound",
            "Deny all inbound traffic",
            "*",
            "*",
            "Deny",
            65500,
            "Inbound",
        ),
        (
            "AllowVnetOutBound",
            "Allow outbound traffic from all VMs to all VMs in VNET",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow",
            65000,
            "Outbound",
        ),
        (
            "AllowInternetOutBound",
            "Allow outbound traffic from all VMs to Internet",
            "*",
            "Internet",
            "Allow",
            65001,
            "Outbound",
        ),
        (
            "DenyAllOutBound",
            "Deny all outbound traffic",
            "*",
            "*",
            "Deny",
            65500,
            "Outbound",
        ),
    ];
    Value::Array(
        rows.iter()
            .map(|(name, desc, src, dst, access, prio, dir)| {
                json!({
                    "name": name,
                    "id": format!("{nsg_id}/defaultSecurityRules/{name}"),
                    "etag": etag(rng),
                    "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
                    "properties": {
                        "provisioningState": "Succeeded",
                        "description": desc,
                        "protocol": "*",
                        "sourcePortRange": "*",
                        "destinationPortRange": "*",
                        "sourceAddressPrefix": src,
                        "destinationAddressPrefix": dst,
                        "access": access,
                        "priority": prio,
                        "direction": dir,
                        "sourcePortRanges": [],
                        "destinationPortRanges": [],
                        "sourceAddressPrefixes": [],
                        "destinationAddressPrefixes": [],
                    },
                })
            })
            .collect(),
    )
}

/// One row of the network usages API (`UsageList`), with integer numbers as the live API sends.
pub fn usage(sub: &str, location: &str, name: &str, localized: &str, current: u64, limit: u64) -> Value {
    json!({
        "currentValue": current,
        "id": format!("/subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/usages/{name}"),
        "limit": limit,
        "name": {"localizedValue": localized, "value": name},
        "unit": "Count",
    })
}

/// The usage rows of one region as the spec example lists them, `(name, localized, default limit)`.
/// Limits are Azure's documented defaults (domain.md §4.2) where one exists.
pub const USAGE_ROWS: &[(&str, &str, u64)] = &[
    ("VirtualNetworks", "Virtual Networks", 1000),
    ("StaticPublicIPAddresses", "Static Public IP Addresses", 1000),
    ("NetworkSecurityGroups", "Network Security Groups", 5000),
    ("PublicIPAddresses", "Public IP Addresses", 1000),
    ("StandardPublicIPAddresses", "Standard Public IP Addresses", 1000),
    ("NetworkInterfaces", "Network Interfaces", 65536),
    ("LoadBalancers", "Load Balancers", 1000),
    ("ApplicationGateways", "Application Gateways", 1000),
    ("RouteTables", "Route Tables", 200),
    ("RouteFilters", "Route Filters", 1000),
    ("NetworkWatchers", "Network Watchers", 1),
    ("PacketCaptures", "Packet Captures", 10000),
    (
        "DnsServersPerVirtualNetwork",
        "DNS servers per Virtual Network",
        20,
    ),
    ("SubnetsPerVirtualNetwork", "Subnets per Virtual Network", 3000),
    (
        "IPConfigurationsPerVirtualNetwork",
        "IP Configurations per Virtual Network",
        65536,
    ),
    ("PeeringsPerVirtualNetwork", "Peerings per Virtual Network", 500),
    (
        "SecurityRulesPerNetworkSecurityGroup",
        "Security rules per Network Security Group",
        1000,
    ),
    (
        "SecurityRuleAddressesOrPortsPerNetworkSecurityGroup",
        "Security rules addresses or ports per Network Security Group",
        4000,
    ),
    (
        "InboundRulesPerLoadBalancer",
        "Inbound Rules per Load Balancer",
        1500,
    ),
    (
        "FrontendIPConfigurationPerLoadBalancer",
        "Frontend IP Configurations per Load Balancer",
        600,
    ),
    (
        "outboundRulesPerLoadBalancer",
        "Outbound Rules per Load Balancer",
        600,
    ),
    ("RoutesPerRouteTable", "Routes per Route Table", 400),
    (
        "SecondaryIPConfigurationsPerNetworkInterface",
        "Secondary IP Configurations per Network Interface",
        256,
    ),
    (
        "InboundRulesPerNetworkInterface",
        "Inbound rules per Network Interface",
        300,
    ),
];

/// Region-wide rows whose `currentValue` the generator counts (the rest are per-resource limits
/// reported with `currentValue` 0).
pub const COUNTED_USAGES: &[&str] = &[
    "VirtualNetworks",
    "StaticPublicIPAddresses",
    "NetworkSecurityGroups",
    "PublicIPAddresses",
    "StandardPublicIPAddresses",
    "NetworkInterfaces",
    "LoadBalancers",
];
