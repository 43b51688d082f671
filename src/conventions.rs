//! How cloud-provider-azure names and tags what it creates (`domain.md` §1–3 in shared/docs).
//!
//! Pure functions only. Every ownership decision in the checks goes through here, so that a
//! convention is written once, with its source.

use crate::inventory::{Cluster, Node, PublicIp, Service};

/// Tag keys on public IPs (`CPA:pkg/consts/consts.go` L350–358): current key, legacy key.
pub const TAG_SERVICE: (&str, &str) = ("k8s-azure-service", "service");
pub const TAG_CLUSTER: (&str, &str) = ("k8s-azure-cluster-name", "kubernetes-cluster-name");
pub const TAG_DNS_LABEL_SERVICE: (&str, &str) =
    ("k8s-azure-dns-label-service", "kubernetes-dns-label-service");

/// Default `--cluster-name` (`vendor/k8s.io/cloud-provider/config/v1alpha1/defaults.go`).
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
pub const INTERNAL_LB_SUFFIX: &str = "-internal";
/// AKS's SNAT pool, unmanaged by the provider (CAPZ: `// hard-coded in aks`).
pub const AKS_OUTBOUND_POOL: &str = "aksOutboundBackendPool";
pub const SHARED_PROBE_NAME: &str = "cluster-service-shared-health-probe";
/// NSG rules managed since v1.29 (`securityrule.go`): prefix and priority range.
pub const NSG_RULE_PREFIX: &str = "k8s-azure-lb";
pub const NSG_MIN_PRIORITY: u32 = 500;
pub const NSG_MAX_PRIORITY: u32 = 4096;

pub const ANN_INTERNAL: &str = "service.beta.kubernetes.io/azure-load-balancer-internal";
pub const ANN_INTERNAL_SUBNET: &str = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet";
pub const ANN_PIP_RG: &str = "service.beta.kubernetes.io/azure-load-balancer-resource-group";
pub const ANN_PIP_NAME: &str = "service.beta.kubernetes.io/azure-pip-name";
pub const ANN_PIP_NAME_V6: &str = "service.beta.kubernetes.io/azure-pip-name-ipv6";
pub const ANN_LB_IPV4: &str = "service.beta.kubernetes.io/azure-load-balancer-ipv4";
pub const ANN_LB_IPV6: &str = "service.beta.kubernetes.io/azure-load-balancer-ipv6";
pub const ANN_DNS_LABEL: &str = "service.beta.kubernetes.io/azure-dns-label-name";
pub const ANN_ADDITIONAL_PIPS: &str = "service.beta.kubernetes.io/azure-additional-public-ips";
pub const ANN_HA_PORTS: &str =
    "service.beta.kubernetes.io/azure-load-balancer-enable-high-availability-ports";

/// Per-port probe annotations, `service.beta.kubernetes.io/port_{port}_{param}`
/// (`consts.BuildHealthProbeAnnotationKeyForPort`, domain.md §3.1).
pub const PORT_PARAM_HEALTH_PROBE_PORT: &str = "health-probe_port";
pub const PORT_PARAM_NO_PROBE_RULE: &str = "no_probe_rule";

/// Cloud config keys of the shared health probe mode (domain.md §1.5, since v1.28.5):
/// `clusterServiceLoadBalancerHealthProbeMode: shared` gives every `Cluster`-policy Service the
/// one probe `cluster-service-shared-health-probe` on port 10256 (kube-proxy's `/healthz`).
pub const CFG_HEALTH_PROBE_MODE: &str = "clusterServiceLoadBalancerHealthProbeMode";
pub const CFG_SHARED_PROBE_PORT: &str = "clusterServiceSharedLoadBalancerHealthProbePort";
pub const SHARED_PROBE_DEFAULT_PORT: u32 = 10256;

/// kube-system pods that carry the API server → node tunnel on AKS (`kubectl logs/exec/attach`):
/// `tunnelfront` (the guide's "AKS kubectl logs connection timed out", label
/// `component=tunnel`), its successors `aks-link` and `konnectivity-agent`.
pub const TUNNEL_POD_NAMES: [&str; 3] = ["tunnelfront", "konnectivity-agent", "aks-link"];
/// The guide selects them with `kubectl -n kube-system get po -l component=tunnel`.
pub const TUNNEL_COMPONENT_LABEL: &str = "tunnel";
/// NSG sources of a Service (`CPA:pkg/provider/loadbalancer/accesscontrol.go`): service tags,
/// IP ranges (cannot be combined with `spec.loadBalancerSourceRanges`), and the upstream
/// annotation read when `spec.loadBalancerSourceRanges` is empty (`SourceRanges`).
pub const ANN_ALLOWED_SERVICE_TAGS: &str = "service.beta.kubernetes.io/azure-allowed-service-tags";
pub const ANN_ALLOWED_IP_RANGES: &str = "service.beta.kubernetes.io/azure-allowed-ip-ranges";
pub const ANN_LB_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
/// Floating IP off: LB rule `backendPort` = nodePort, NSG destination = node IPs
/// (`consts.IsK8sServiceDisableLoadBalancerFloatingIP`).
pub const ANN_DISABLE_FLOATING_IP: &str =
    "service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip";
/// Basic / mode-based LB selection (`selectLoadBalancer`): `__auto__` or VM set names.
pub const ANN_LB_MODE: &str = "service.beta.kubernetes.io/azure-load-balancer-mode";

pub const LABEL_EXCLUDE_LB: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
pub const LABEL_LEGACY_EXCLUDE: &str = "alpha.service-controller.kubernetes.io/exclude-balancer";
pub const LABEL_MANAGED: &str = "kubernetes.azure.com/managed";
pub const LABEL_RESOURCE_GROUP: &str = "kubernetes.azure.com/resource-group";

/// The Service base name (`cloudprovider.DefaultLoadBalancerName`): `"a"` + UID without dashes,
/// cut to 32 characters.
pub fn base_name(uid: &str) -> String {
    let mut s = String::with_capacity(33);
    s.push('a');
    s.extend(uid.chars().filter(|c| *c != '-'));
    s.truncate(32);
    s
}

/// `true` when `name` starts with a base-name shape: `a` + 31 hex digits.
pub fn looks_like_base_name(name: &str) -> bool {
    name.len() >= 32
        && name.as_bytes()[0].eq_ignore_ascii_case(&b'a')
        && name.as_bytes()[1..32].iter().all(|b| b.is_ascii_hexdigit())
}

/// The base-name prefix of a resource name, lowercased, if it has one.
pub fn base_prefix(name: &str) -> Option<String> {
    looks_like_base_name(name).then(|| name[..32].to_ascii_lowercase())
}

/// Tag lookup, keys compared case-insensitively (Azure tag names are), current key before legacy.
pub fn tag<'a>(tags: &'a std::collections::BTreeMap<String, String>, keys: (&str, &str)) -> Option<&'a str> {
    let find = |k: &str| {
        tags.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    find(keys.0).or_else(|| find(keys.1))
}

/// The `ns/name` entries of a PIP's service tag (comma-separated list), `None` when untagged.
pub fn pip_services(pip: &PublicIp) -> Option<Vec<String>> {
    tag(&pip.tags, TAG_SERVICE).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// `serviceOwnsPublicIP`: a PIP is system-created iff it has a service tag; it belongs to this
/// cluster when the cluster tag is absent (older provider versions) or equals the cluster name.
pub fn pip_cluster_matches(pip: &PublicIp, cluster_name_tag: &str) -> bool {
    match tag(&pip.tags, TAG_CLUSTER) {
        None => true,
        Some(v) => v.eq_ignore_ascii_case(cluster_name_tag),
    }
}

/// Parsed `spec.providerID` (`domain.md` §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderId {
    /// Standalone / availability-set / VMSS Flex VM.
    Vm {
        subscription: String,
        resource_group: String,
        name: String,
    },
    /// VMSS Uniform instance.
    VmssInstance {
        subscription: String,
        resource_group: String,
        scale_set: String,
        instance_id: String,
    },
    /// `azure://` but not a Compute VM or instance we understand.
    OtherAzure(String),
    /// Empty or another provider (`kind://`, `vk://`, ...).
    NotAzure(String),
}

impl ProviderId {
    pub fn parse(s: &str) -> ProviderId {
        let Some(rest) = s.strip_prefix("azure://") else {
            return ProviderId::NotAzure(s.to_string());
        };
        let Some(id) = azaudit_world::ResourceId::parse(rest) else {
            return ProviderId::OtherAzure(s.to_string());
        };
        let (Some(sub), Some(rg)) = (id.subscription.clone(), id.resource_group.clone()) else {
            return ProviderId::OtherAzure(s.to_string());
        };
        let is_compute = id
            .provider
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("Microsoft.Compute"));
        match id.types.as_slice() {
            [(t, n)] if is_compute && t.eq_ignore_ascii_case("virtualMachines") => ProviderId::Vm {
                subscription: sub,
                resource_group: rg,
                name: n.clone(),
            },
            [(t1, ss), (t2, i)]
                if is_compute
                    && t1.eq_ignore_ascii_case("virtualMachineScaleSets")
                    && t2.eq_ignore_ascii_case("virtualMachines") =>
            {
                ProviderId::VmssInstance {
                    subscription: sub,
                    resource_group: rg,
                    scale_set: ss.clone(),
                    instance_id: i.clone(),
                }
            }
            _ => ProviderId::OtherAzure(s.to_string()),
        }
    }

    pub fn subscription(&self) -> Option<&str> {
        match self {
            ProviderId::Vm { subscription, .. } | ProviderId::VmssInstance { subscription, .. } => {
                Some(subscription)
            }
            _ => None,
        }
    }

    pub fn resource_group(&self) -> Option<&str> {
        match self {
            ProviderId::Vm { resource_group, .. } | ProviderId::VmssInstance { resource_group, .. } => {
                Some(resource_group)
            }
            _ => None,
        }
    }
}

/// A virtual-kubelet node (rule-catalogue: label `type=virtual-kubelet`, a virtual-kubelet
/// taint, or a non-empty providerID of another scheme than `azure://`).
pub fn is_virtual_node(n: &Node) -> bool {
    n.meta.labels.get("type").is_some_and(|v| v == "virtual-kubelet")
        || n.taints.iter().any(|t| t.key.contains("virtual-kubelet"))
        || n.provider_id
            .as_deref()
            .is_some_and(|p| !p.is_empty() && !p.starts_with("azure://"))
}

/// Unmanaged (`kubernetes.azure.com/managed=false`): on-prem, other clouds, virtual nodes.
pub fn is_unmanaged(n: &Node) -> bool {
    n.meta
        .labels
        .get(LABEL_MANAGED)
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
}

/// The Azure provider excludes a node when the label is present with any value (`azure.go`).
pub fn is_excluded_by_label(n: &Node) -> bool {
    n.meta.labels.contains_key(LABEL_EXCLUDE_LB)
}

pub fn is_control_plane(n: &Node) -> bool {
    n.meta
        .labels
        .contains_key("node-role.kubernetes.io/control-plane")
        || n.meta.labels.contains_key("node-role.kubernetes.io/master")
        || n.meta
            .labels
            .get("kubernetes.io/role")
            .is_some_and(|v| v == "master")
}

/// Eligible for the cluster's backend pools (rule-catalogue "eligible node"): not excluded, not
/// unmanaged, not control-plane (Standard SKU excludes masters by default), not in another
/// resource group, and not a virtual node.
pub fn is_eligible_node(n: &Node, cluster: &Cluster) -> bool {
    if is_excluded_by_label(n) || is_unmanaged(n) || is_control_plane(n) || is_virtual_node(n) {
        return false;
    }
    if n.meta.deletion_timestamp.is_some() {
        return false;
    }
    if n.taints.iter().any(|t| t.key == "ToBeDeletedByClusterAutoscaler") {
        return false;
    }
    if let (Some(node_rg), Some(cluster_rg)) =
        (n.meta.labels.get(LABEL_RESOURCE_GROUP), &cluster.resource_group)
        && !node_rg.eq_ignore_ascii_case(cluster_rg)
    {
        return false;
    }
    true
}

/// `true` for a Service that asks for an internal LB.
pub fn is_internal(svc: &Service) -> bool {
    svc.annotation(ANN_INTERNAL)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub fn is_dual_stack(svc: &Service) -> bool {
    svc.ip_families.len() == 2
}

/// Managed LB names of a cluster (lowercased), `ListManagedLBs`: `<name>` and `<name>-internal`.
pub fn is_managed_lb_name(lb_name: &str, cluster_name_tag: &str) -> bool {
    let l = lb_name.to_ascii_lowercase();
    let base = l.strip_suffix(INTERNAL_LB_SUFFIX).unwrap_or(&l);
    base == cluster_name_tag.to_ascii_lowercase()
}

/// Managed pool names: `<cluster>`, `<cluster>-IPv6` (case-insensitive). Per-Service pools of
/// multi-SLB are matched separately.
pub fn is_managed_pool_name(pool: &str, cluster_name_tag: &str) -> bool {
    let p = pool.to_ascii_lowercase();
    let c = cluster_name_tag.to_ascii_lowercase();
    p == c || p == format!("{c}-ipv6")
}

/// IPs a Service asks for: `spec.loadBalancerIP` and the ipv4/ipv6 annotations.
pub fn requested_ips(svc: &Service) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    if let Some(ip) = svc.load_balancer_ip.as_deref() {
        out.push(ip);
    }
    for a in [ANN_LB_IPV4, ANN_LB_IPV6] {
        if let Some(ip) = svc.annotation(a).filter(|s| !s.is_empty()) {
            out.push(ip);
        }
    }
    out
}

/// `true` for a Service the Azure cloud provider reconciles: type LoadBalancer without a
/// `spec.loadBalancerClass`. The upstream service controller skips every Service that names a
/// class (`wantsLoadBalancer` in `k8s.io/cloud-provider/controllers/service/controller.go`): another
/// controller owns it, and its addresses and probes are none of the Azure provider's business.
pub fn wants_cloud_load_balancer(svc: &Service) -> bool {
    svc.is_load_balancer() && svc.load_balancer_class.as_deref().is_none_or(str::is_empty)
}

/// The per-port annotation `service.beta.kubernetes.io/port_{port}_{param}`.
pub fn port_annotation(svc: &Service, port: u32, param: &str) -> Option<String> {
    svc.annotation(&format!("service.beta.kubernetes.io/port_{port}_{param}"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The DNS label a Service asks for (`azure-dns-label-name`); empty means "remove the label".
pub fn requested_dns_label(svc: &Service) -> Option<&str> {
    svc.annotation(ANN_DNS_LABEL)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The PIP name the provider generates for a Service (`getPublicIPName`, domain.md §1.8):
/// `<clusterName>-<base>`, without the prefix-id segment or the dual-stack `-IPv6` suffix.
pub fn generated_pip_name(cluster_name_tag: &str, base: &str) -> String {
    format!("{cluster_name_tag}-{base}")
}

/// The resource group the provider searches for a Service's PIP (`getPublicIPAddressResourceGroup`):
/// the `azure-load-balancer-resource-group` annotation, else the cluster resource group.
pub fn pip_resource_group<'a>(svc: &'a Service, cluster_rg: Option<&'a str>) -> Option<&'a str> {
    svc.annotation(ANN_PIP_RG)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(cluster_rg)
}

/// `true` for a kube-system tunnel pod (see [`TUNNEL_POD_NAMES`]): by name prefix
/// (`<deployment>-<hash>-<id>`) or by its `app` / `component` label.
pub fn is_tunnel_pod(name: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let by_name = TUNNEL_POD_NAMES.iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    });
    let by_label = ["app", "component", "k8s-app"].iter().any(|k| {
        labels
            .get(*k)
            .is_some_and(|v| TUNNEL_POD_NAMES.contains(&v.as_str()) || v == TUNNEL_COMPONENT_LABEL)
    });
    by_name || by_label
}

/// Who may reach a Service through the NSG, as cloud-provider-azure's `AccessControl` computes it
/// (`CPA:pkg/provider/loadbalancer/accesscontrol.go`): service tags, IP ranges, and `Internet`
/// when `IsAllowFromInternet` holds. Strings as written; ranges are not validated here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedSources {
    pub service_tags: Vec<String>,
    /// `spec.loadBalancerSourceRanges` (else the `load-balancer-source-ranges` annotation) and
    /// `azure-allowed-ip-ranges`.
    pub ip_ranges: Vec<String>,
    /// `IsAllowFromInternet`: no tags, no restricting ranges, and external (or internal with an
    /// explicit allow-all range).
    pub internet: bool,
}

fn comma_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// `0.0.0.0/0` or `::/0` (`iputil.IsPrefixesAllowAll`).
fn is_allow_all(range: &str) -> bool {
    range
        .split_once('/')
        .is_some_and(|(a, l)| l.trim() == "0" && a.trim().parse::<std::net::IpAddr>().is_ok())
}

pub fn allowed_sources(svc: &Service) -> AllowedSources {
    let service_tags = comma_list(svc.annotation(ANN_ALLOWED_SERVICE_TAGS));
    let source_ranges = if svc.load_balancer_source_ranges.is_empty() {
        comma_list(svc.annotation(ANN_LB_SOURCE_RANGES))
    } else {
        svc.load_balancer_source_ranges.clone()
    };
    let allowed_ranges = comma_list(svc.annotation(ANN_ALLOWED_IP_RANGES));
    let restricting = |r: &[String]| !r.is_empty() && !r.iter().any(|x| is_allow_all(x));
    let internet = service_tags.is_empty()
        && !restricting(&source_ranges)
        && !restricting(&allowed_ranges)
        && (!is_internal(svc) || !source_ranges.is_empty() || !allowed_ranges.is_empty());
    let mut ip_ranges = source_ranges;
    ip_ranges.extend(allowed_ranges);
    AllowedSources {
        service_tags,
        ip_ranges,
        internet,
    }
}

pub fn floating_ip_disabled(svc: &Service) -> bool {
    svc.annotation(ANN_DISABLE_FLOATING_IP)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// PIP names a Service asks for (`azure-pip-name`, `azure-pip-name-ipv6`).
pub fn requested_pip_names(svc: &Service) -> Vec<&str> {
    [ANN_PIP_NAME, ANN_PIP_NAME_V6]
        .into_iter()
        .filter_map(|a| svc.annotation(a).filter(|s| !s.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_is_a_plus_31_hex() {
        let b = base_name("3d654cb4-4770-4508-bc7b-1db1dacaec0f");
        assert_eq!(b, "a3d654cb447704508bc7b1db1dacaec0");
        assert_eq!(b.len(), 32);
        assert!(looks_like_base_name("a3d654cb447704508bc7b1db1dacaec0-TCP-443"));
        assert!(!looks_like_base_name("aksOutboundBackendPool"));
        assert!(!looks_like_base_name("a3d654cb4477-short"));
        assert_eq!(
            base_prefix("A3D654CB447704508BC7B1DB1DACAEC0-TCP-443").as_deref(),
            Some("a3d654cb447704508bc7b1db1dacaec0")
        );
    }

    #[test]
    fn provider_ids() {
        let vmss = ProviderId::parse(
            "azure:///subscriptions/s/resourceGroups/mc_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np-1/virtualMachines/3",
        );
        assert_eq!(
            vmss,
            ProviderId::VmssInstance {
                subscription: "s".into(),
                resource_group: "mc_rg".into(),
                scale_set: "aks-np-1".into(),
                instance_id: "3".into()
            }
        );
        let vm = ProviderId::parse(
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/node-0",
        );
        assert!(matches!(vm, ProviderId::Vm { ref name, .. } if name == "node-0"));
        assert!(matches!(ProviderId::parse(""), ProviderId::NotAzure(_)));
        assert!(matches!(ProviderId::parse("vk://aci"), ProviderId::NotAzure(_)));
        assert!(matches!(
            ProviderId::parse("azure:///foo"),
            ProviderId::OtherAzure(_)
        ));
    }

    #[test]
    fn managed_names() {
        assert!(is_managed_lb_name("kubernetes", "kubernetes"));
        assert!(is_managed_lb_name("Kubernetes-Internal", "kubernetes"));
        assert!(!is_managed_lb_name("kubernetes-other", "kubernetes"));
        assert!(is_managed_pool_name("kubernetes-IPv6", "kubernetes"));
        assert!(!is_managed_pool_name(AKS_OUTBOUND_POOL, "kubernetes"));
    }
}
