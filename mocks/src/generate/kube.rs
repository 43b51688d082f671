//! Kubernetes objects of one planned cluster (`k8s/<cluster>/*.json` as `kubectl get -o json`
//! lists), its cloud config, and the findings whose resource is a Kubernetes object.
//!
//! Shapes follow Kubernetes' own test objects in `shared/fixtures/kubernetes/`. Like the ARM
//! renderer it decides nothing: every finding comes from a flag set by the planner.

use std::io;
use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::model::{Cluster, Node, NodeKind, Pending, PipKind, SvcDefect};
use super::names::uuid;
use super::render::{config_json, config_secret, ghost_key, provider_id};
use super::{Env, Truth};

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

fn suffix(rng: &mut ChaCha8Rng, n: usize) -> String {
    // Kubernetes' generated-name alphabet (no vowels, no look-alike digits).
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n).map(|_| A[rng.gen_range(0..A.len())] as char).collect()
}

fn rv(rng: &mut ChaCha8Rng) -> String {
    rng.gen_range(100_000u32..9_999_999).to_string()
}

pub fn render_k8s(
    c: &Cluster,
    rng: &mut ChaCha8Rng,
    truth: &mut Truth,
    env: &Env,
    root: &Path,
) -> io::Result<()> {
    let dir = root.join("k8s").join(&c.name);
    let cl = Some(c.name.as_str());
    let aks = c.is_aks();

    // ---- Services ---------------------------------------------------------------------------
    let mut services: Vec<(String, Value)> = Vec::new();
    let mut cluster_ip = 10u32;
    let mut next_cip = || {
        cluster_ip += 1;
        (
            format!("10.0.{}.{}", cluster_ip / 250, cluster_ip % 250 + 1),
            cluster_ip,
        )
    };
    for (ns, name, ip, port) in [
        ("default", "kubernetes", "10.0.0.1", 443u16),
        ("kube-system", "kube-dns", "10.0.0.10", 53),
        ("kube-system", "metrics-server", "10.0.0.20", 443),
    ] {
        let v = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": uuid(rng), "resourceVersion": rv(rng),
                         "creationTimestamp": env.timestamp(400), "labels": {"component": name}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                     "ports": [{"name": "https", "protocol": "TCP", "port": port, "targetPort": port}]},
            "status": {"loadBalancer": {}},
        });
        services.push((format!("{ns}/{name}"), v));
    }
    let workers: Vec<&Node> = c.nodes.iter().filter(|n| n.eligible() && n.registered).collect();
    let mut slices: Vec<Value> = Vec::new();
    for s in &c.services {
        let mut ann = serde_json::Map::new();
        let mut spec = json!({
            "type": "LoadBalancer",
            "selector": {"app": s.name},
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": true,
            "externalTrafficPolicy": if s.local_hcnp.is_some() { "Local" } else { "Cluster" },
            "ports": s.ports.iter().map(|p| json!({"name": p.name, "protocol": p.proto, "port": p.port,
                                                   "targetPort": p.port, "nodePort": p.node_port})).collect::<Vec<_>>(),
        });
        let (cip, k) = next_cip();
        if s.dual {
            let cip6 = format!("fd00:10:96::{k:x}");
            spec["clusterIP"] = json!(cip);
            spec["clusterIPs"] = json!([cip, cip6]);
            spec["ipFamilies"] = json!(["IPv4", "IPv6"]);
            spec["ipFamilyPolicy"] = json!("RequireDualStack");
        } else {
            spec["clusterIP"] = json!(cip);
            spec["clusterIPs"] = json!([cip]);
            spec["ipFamilies"] = json!(["IPv4"]);
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if let Some(h) = s.local_hcnp {
            spec["healthCheckNodePort"] = json!(h);
        }
        if s.internal {
            ann.insert(
                "service.beta.kubernetes.io/azure-load-balancer-internal".into(),
                json!("true"),
            );
        }
        if let Some(sn) = &s.subnet {
            ann.insert(
                "service.beta.kubernetes.io/azure-load-balancer-internal-subnet".into(),
                json!(sn),
            );
        }
        match &s.pip {
            Some(PipKind::Generated { rg }) if rg != &c.rg => {
                ann.insert(
                    "service.beta.kubernetes.io/azure-load-balancer-resource-group".into(),
                    json!(rg),
                );
            }
            Some(PipKind::ByoName(n)) => {
                ann.insert("service.beta.kubernetes.io/azure-pip-name".into(), json!(n));
            }
            Some(PipKind::ByoIp(_)) | Some(PipKind::Pinned { .. }) => spec["loadBalancerIP"] = json!(s.ip4),
            _ => {}
        }
        if let Some(l) = &s.dns_label {
            ann.insert("service.beta.kubernetes.io/azure-dns-label-name".into(), json!(l));
        }
        let r = super::render::svc_ref(c, &s.ns, &s.name);
        match &s.pending {
            Some(Pending::MissingIp(ip)) => {
                ann.insert(
                    "service.beta.kubernetes.io/azure-load-balancer-ipv4".into(),
                    json!(ip),
                );
            }
            Some(Pending::MismatchName { pip, .. }) => {
                ann.insert("service.beta.kubernetes.io/azure-pip-name".into(), json!(pip));
                truth.finding("service-pip-resource-group-mismatch", &r, cl);
            }
            Some(Pending::MismatchIp { ip, .. }) => {
                spec["loadBalancerIP"] = json!(ip);
                truth.finding("service-pip-resource-group-mismatch", &r, cl);
            }
            Some(Pending::PipNoFrontend) | None => {}
        }
        let ingress: Vec<Value> = if s.has_frontend() {
            std::iter::once(&s.ip4)
                .chain(s.ip6.iter())
                .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
                .collect()
        } else {
            truth.finding("service-pending-load-balancer", &r, cl);
            Vec::new()
        };
        match &s.defect {
            Some(SvcDefect::NoReadyEndpoints { .. }) => {
                truth.finding("service-without-ready-endpoints", &r, cl)
            }
            Some(SvcDefect::NsgBlock { .. }) => truth.finding("nsg-blocks-service-port", &r, cl),
            Some(SvcDefect::ProbeMissing) | Some(SvcDefect::ProbeWrongPort(_)) => {
                truth.finding("lb-health-probe-mismatch", &r, cl)
            }
            // The Service that holds the label is fine; the one that cannot get it is reported.
            Some(SvcDefect::DnsConflict { owner: false }) => truth.finding("dns-label-conflict", &r, cl),
            Some(SvcDefect::DnsConflict { owner: true }) => truth.lookalike("dns-label-owner", &r),
            Some(SvcDefect::StalePort(_)) | None => {}
        }
        if s.protected && matches!(s.pip, Some(PipKind::Pinned { .. })) {
            truth.lookalike("second-service-pinning-shared-ip", &r);
        }
        let status = if ingress.is_empty() {
            json!({"loadBalancer": {}})
        } else {
            json!({"loadBalancer": {"ingress": ingress}})
        };
        let v = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": s.name, "namespace": s.ns, "uid": s.uid, "resourceVersion": rv(rng),
                         "creationTimestamp": env.timestamp(s.days), "labels": {"app": s.name}, "annotations": ann},
            "spec": spec,
            "status": status,
        });
        services.push((s.key(), v));

        // EndpointSlice: ready endpoints unless planted otherwise.
        let (count, ready) = match s.defect {
            Some(SvcDefect::NoReadyEndpoints { empty_slice: true }) => (0, false),
            Some(SvcDefect::NoReadyEndpoints { empty_slice: false }) => (2, false),
            _ => (rng.gen_range(2..4), true),
        };
        let endpoints: Vec<Value> = (0..count)
            .map(|_| {
                let pod = format!("{}-{}-{}", s.name, suffix(rng, 10), suffix(rng, 5));
                let node = workers[rng.gen_range(0..workers.len())];
                json!({
                    "addresses": [format!("10.244.{}.{}", rng.gen_range(0..255), rng.gen_range(2..250))],
                    "conditions": {"ready": ready, "serving": ready, "terminating": false},
                    "nodeName": node.name,
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": s.ns, "uid": uuid(rng)},
                })
            })
            .collect();
        slices.push(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": format!("{}-{}", s.name, suffix(rng, 5)), "namespace": s.ns, "uid": uuid(rng),
                         "resourceVersion": rv(rng), "creationTimestamp": env.timestamp(s.days),
                         "labels": {"kubernetes.io/service-name": s.name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": s.name, "uid": s.uid,
                                              "controller": true, "blockOwnerDeletion": true}]},
            "endpoints": endpoints,
            "ports": s.ports.iter().map(|p| json!({"name": p.name, "port": p.port, "protocol": p.proto})).collect::<Vec<_>>(),
        }));
    }
    for g in c.ghosts.iter().filter(|g| g.now_cluster_ip) {
        // Switched to ClusterIP: the provider should have removed its frontend, and did not.
        let (cip, _) = next_cip();
        let v = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": g.name, "namespace": g.ns, "uid": g.uid, "resourceVersion": rv(rng),
                         "creationTimestamp": env.timestamp(300), "labels": {"app": g.name},
                         "annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}},
            "spec": {"type": "ClusterIP", "selector": {"app": g.name}, "clusterIP": cip, "clusterIPs": [cip],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                     "internalTrafficPolicy": "Cluster",
                     "ports": g.ports.iter().map(|p| json!({"name": p.name, "protocol": p.proto, "port": p.port, "targetPort": p.port})).collect::<Vec<_>>()},
            "status": {"loadBalancer": {}},
        });
        let r = super::render::svc_ref(c, &g.ns, &g.name);
        truth.lookalike("clusterip-service-with-leftover-frontend", &r);
        services.push((ghost_key(g), v));
    }
    services.sort_by(|a, b| a.0.cmp(&b.0));
    write(
        &dir.join("services.json"),
        &list("ServiceList", "v1", services.into_iter().map(|s| s.1).collect()),
    )?;
    write(
        &dir.join("endpointslices.json"),
        &list("EndpointSliceList", "discovery.k8s.io/v1", slices),
    )?;

    // ---- Nodes ------------------------------------------------------------------------------
    let mut nodes: Vec<(String, Value)> = Vec::new();
    for (k, n) in c.nodes.iter().enumerate() {
        let r = format!("k8s://{}/nodes/{}", c.name, n.name);
        let v = node_json(c, n, k, rng, env);
        let virtual_proper = matches!(n.kind, NodeKind::Virtual { proper: true });
        if n.is_virtual() {
            if virtual_proper {
                truth.lookalike("properly-excluded-virtual-node", &r);
            } else {
                truth.finding("virtual-node-not-excluded", &r, cl);
            }
        } else if !n.registered {
            truth.finding("node-not-registered-with-cloud", &r, cl);
        } else if !n.instance_exists {
            truth.finding("node-instance-not-found", &r, cl);
        } else if !n.missing_from.is_empty() {
            truth.finding("node-missing-from-backend-pool", &r, cl);
        } else if n.control_plane {
            truth.lookalike("control-plane-node-not-in-pool", &r);
        } else if n.excluded {
            truth.lookalike("excluded-node-not-in-pool", &r);
        }
        nodes.push((n.name.clone(), v));
    }
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    write(
        &dir.join("nodes.json"),
        &list("NodeList", "v1", nodes.into_iter().map(|n| n.1).collect()),
    )?;

    // ---- kube-system pods -------------------------------------------------------------------
    let mut pods: Vec<(String, Value)> = Vec::new();
    let real: Vec<&Node> = c
        .nodes
        .iter()
        .filter(|n| !n.is_virtual() && n.registered)
        .collect();
    let deployment = |app: &str,
                      replicas: usize,
                      bad: &dyn Fn(usize) -> bool,
                      rng: &mut ChaCha8Rng,
                      pods: &mut Vec<(String, Value)>,
                      truth: &mut Truth| {
        let rs = suffix(rng, 10);
        for i in 0..replicas {
            let name = format!("{app}-{rs}-{}", suffix(rng, 5));
            let node = real[(i * 7 + app.len()) % real.len()];
            let unhealthy = bad(i);
            if unhealthy {
                truth.finding(
                    "aks-tunnel-unhealthy",
                    &format!("k8s://{}/kube-system/pods/{name}", c.name),
                    cl,
                );
            }
            pods.push((name.clone(), pod_json(&name, app, node, unhealthy, rng, env)));
        }
    };
    deployment("coredns", 2, &|_| false, rng, &mut pods, truth);
    if aks {
        let bad = |i: usize| c.bad_tunnel_pods.contains(&i);
        deployment("konnectivity-agent", 2, &bad, rng, &mut pods, truth);
        deployment("metrics-server", 2, &|_| false, rng, &mut pods, truth);
    }
    for n in &real {
        let name = format!("kube-proxy-{}", suffix(rng, 5));
        pods.push((name.clone(), pod_json(&name, "kube-proxy", n, false, rng, env)));
    }
    if !aks {
        for n in real.iter().filter(|n| n.control_plane) {
            for app in ["kube-apiserver", "etcd", "cloud-controller-manager"] {
                let name = format!("{app}-{}", n.name);
                pods.push((name.clone(), pod_json(&name, app, n, false, rng, env)));
            }
        }
    }
    pods.sort_by(|a, b| a.0.cmp(&b.0));
    write(
        &dir.join("pods.json"),
        &list("PodList", "v1", pods.into_iter().map(|p| p.1).collect()),
    )?;

    // ---- Cloud config: the file and the Secret it comes from --------------------------------
    let config = config_json(c, &env.tenant);
    if c.config_defect.is_some() {
        truth.finding(
            "cloud-config-invalid",
            &format!("k8s://{}/kube-system/secrets/azure-cloud-provider", c.name),
            cl,
        );
    }
    let secret = config_secret(&config, env, rng);
    write(&dir.join("secrets.json"), &list("SecretList", "v1", vec![secret]))?;
    write_private(&dir.join("azure.json"), &config)
}

fn node_json(c: &Cluster, n: &Node, k: usize, rng: &mut ChaCha8Rng, env: &Env) -> Value {
    let mut labels = serde_json::Map::new();
    let mut put = |k: &str, v: &str| {
        labels.insert(k.to_string(), json!(v));
    };
    put("kubernetes.io/hostname", &n.name);
    put("kubernetes.io/os", "linux");
    put("beta.kubernetes.io/os", "linux");
    let mut taints: Vec<Value> = Vec::new();
    let zone = if n.zone == 0 {
        "0".to_string()
    } else {
        format!("{}-{}", c.location, n.zone)
    };
    match &n.kind {
        NodeKind::Virtual { proper } => {
            put("type", "virtual-kubelet");
            put("kubernetes.io/role", "agent");
            // The retired label alone does not exclude a node (domain.md §3.2).
            put("alpha.service-controller.kubernetes.io/exclude-balancer", "true");
            if *proper {
                put("kubernetes.azure.com/managed", "false");
                put("node.kubernetes.io/exclude-from-external-load-balancers", "true");
            }
            taints.push(
                json!({"key": "virtual-kubelet.io/provider", "value": "azure", "effect": "NoSchedule"}),
            );
        }
        NodeKind::Vmss { pool, .. } => {
            put("kubernetes.io/arch", "amd64");
            put("agentpool", pool);
            put("kubernetes.azure.com/agentpool", pool);
            put("kubernetes.azure.com/cluster", &c.rg);
            put(
                "kubernetes.azure.com/mode",
                if pool == "nodepool1" { "system" } else { "user" },
            );
            put("kubernetes.azure.com/role", "agent");
            put("kubernetes.io/role", "agent");
            put("node-role.kubernetes.io/agent", "");
            put("node.kubernetes.io/instance-type", "Standard_D4s_v3");
            put("topology.kubernetes.io/region", &c.location);
            put("topology.kubernetes.io/zone", &zone);
        }
        NodeKind::Vm => {
            put("kubernetes.io/arch", "amd64");
            put("node.kubernetes.io/instance-type", "Standard_D4s_v5");
            put("topology.kubernetes.io/region", &c.location);
            put("topology.kubernetes.io/zone", "0");
            if n.control_plane {
                put("node-role.kubernetes.io/control-plane", "");
                taints.push(json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}));
            }
        }
    }
    if n.excluded && !n.is_virtual() {
        put("node.kubernetes.io/exclude-from-external-load-balancers", "true");
    }
    let mut spec = json!({"podCIDR": format!("10.244.{k}.0/24"), "podCIDRs": [format!("10.244.{k}.0/24")]});
    if n.registered {
        spec["providerID"] = json!(provider_id(c, n));
    }
    if !taints.is_empty() {
        spec["taints"] = Value::Array(taints);
    }
    let mut addresses = vec![json!({"type": "InternalIP", "address": n.ip4})];
    if let Some(ip6) = &n.ip6 {
        addresses.push(json!({"type": "InternalIP", "address": ip6}));
    }
    addresses.push(json!({"type": "Hostname", "address": n.name}));
    let ts = env.timestamp(n.days);
    let now = env.timestamp(0);
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "uid": n.uid, "resourceVersion": rv(rng), "creationTimestamp": ts, "labels": labels,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": spec,
        "status": {
            "addresses": addresses,
            "capacity": {"cpu": "4", "memory": "16393852Ki", "pods": "110", "ephemeral-storage": "129886128Ki"},
            "allocatable": {"cpu": "3860m", "memory": "12880508Ki", "pods": "110", "ephemeral-storage": "119703055367"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": ts},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": ts},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": now, "lastTransitionTime": ts},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": ts},
            ],
            "nodeInfo": {"kubeletVersion": format!("v{}", env.k8s_version), "kubeProxyVersion": format!("v{}", env.k8s_version),
                         "containerRuntimeVersion": "containerd://1.7.27", "osImage": "Ubuntu 24.04.2 LTS",
                         "kernelVersion": "6.8.0-1021-azure", "operatingSystem": "linux", "architecture": "amd64",
                         "machineID": uuid(rng).replace('-', ""), "systemUUID": uuid(rng), "bootID": uuid(rng)},
        },
    })
}

fn pod_json(name: &str, app: &str, node: &Node, unhealthy: bool, rng: &mut ChaCha8Rng, env: &Env) -> Value {
    let started = env.timestamp(node.days.min(30));
    let ready = if unhealthy { "False" } else { "True" };
    let state = if unhealthy {
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}})
    } else {
        json!({"running": {"startedAt": started}})
    };
    let ip = format!("10.244.{}.{}", rng.gen_range(0..255), rng.gen_range(2..250));
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "uid": uuid(rng), "resourceVersion": rv(rng),
                     "creationTimestamp": started, "labels": {"k8s-app": app}},
        "spec": {"nodeName": node.name, "containers": [{"name": app, "image": format!("mcr.microsoft.com/oss/kubernetes/{app}:v1")}],
                 "restartPolicy": "Always", "priorityClassName": "system-cluster-critical"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": ready, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
            ],
            "hostIP": node.ip4, "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started, "qosClass": "Burstable",
            "containerStatuses": [{"name": app, "ready": !unhealthy, "started": !unhealthy,
                                   "restartCount": if unhealthy { 37 } else { 0 },
                                   "image": format!("mcr.microsoft.com/oss/kubernetes/{app}:v1"), "state": state}],
        },
    })
}

fn write(path: &Path, v: &Value) -> io::Result<()> {
    azaudit_world::write_json_atomic(path, v)
}

/// The cloud config names secrets (redacted, still): keep it readable by its owner only, as the
/// catalogue's `cloud-config-invalid` treats a group/other-readable one as a finding.
fn write_private(path: &Path, v: &Value) -> io::Result<()> {
    write(path, v)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
