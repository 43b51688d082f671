//! The cluster's cloud-provider config (`azure.json`, or the `cloud-config` key of the
//! `kube-system/azure-cloud-provider` Secret) parsed into typed settings, with every problem
//! found on the way (and its JSON path) kept for `azaudit doctor` and the audit's config rules.
//!
//! Parsing follows the provider (domain.md §7.4): keys are matched case-insensitively because
//! Go's `encoding/json` does (the docs themselves write `tenantID`, `aadClientID`,
//! `cloudProviderRatelimit`); when the same key appears twice in different spellings the later
//! one wins, as it does in Go; YAML files are accepted because the provider reads the file with
//! `sigs.k8s.io/yaml` (YAML → JSON → `encoding/json`). A value of the wrong JSON type is a
//! problem the provider itself would refuse to start with, so it is reported as an error, and
//! the setting is left unset rather than guessed. Unknown keys are reported (a typo silently
//! falls back to a default in the provider), not rejected.
//!
//! This module only parses and validates: it must not read the network, must not decide which
//! credential to use (that is `auth`), and must never print a secret (secret values are
//! [`Secret`]s and there is no `Serialize`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::secret::Secret;

/// Why a cloud config could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CloudConfigError {
    #[error(
        "read cloud config {path}: {source}: check the path given to --cloud-config (AKS and aks-engine nodes keep it at /etc/kubernetes/azure.json) and that azaudit may read it"
    )]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "parse cloud config {origin}: {detail}: the file must be one JSON (or YAML) object as the cloud provider reads it; fix the syntax (e.g. `python3 -m json.tool {origin}`)"
    )]
    Syntax { origin: String, detail: String },
    #[error(
        "cloud config Secret {origin}: {detail}: the Secret kube-system/azure-cloud-provider must hold the config under data.cloud-config (base64), as cloud-provider-azure reads it"
    )]
    Secret { origin: String, detail: String },
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemLevel {
    /// Worth knowing (an unknown key, a setting the audit ignores).
    Info,
    /// The provider runs, but probably not as the author meant (an unknown enum value that
    /// falls back to a default).
    Warning,
    /// The provider would refuse this config (a value of the wrong JSON type).
    Error,
}

/// One problem, with the JSON path of the value (`$.cloudProviderRateLimitQPS`,
/// `$.multipleStandardLoadBalancerConfigurations[1].name`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: String,
    pub level: ProblemLevel,
    pub message: String,
}

/// `auxiliaryTokenProvider`: a token for a second tenant kept in Key Vault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuxiliaryTokenProvider {
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    pub vault_name: Option<String>,
    pub secret_name: Option<String>,
}

/// A rate-limit block (`cloudProviderRateLimit*` at top level, or a per-client block such as
/// `loadBalancerRateLimit`; `CPA:pkg/provider/config/azure_ratelimit.go`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimit {
    pub enabled: Option<bool>,
    pub qps: Option<f64>,
    pub bucket: Option<i64>,
    pub qps_write: Option<f64>,
    pub bucket_write: Option<i64>,
}

/// One entry of `multipleStandardLoadBalancerConfigurations` (`CPA:pkg/provider/config/multi_slb.go`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MultiSlbConfig {
    pub name: Option<String>,
    pub allow_service_placement: Option<bool>,
    pub primary_vm_set: Option<String>,
    /// Label selectors are kept as the raw JSON (a Kubernetes `LabelSelector`).
    pub service_label_selector: Option<Value>,
    pub service_namespace_selector: Option<Value>,
    pub node_selector: Option<Value>,
}

/// Whom `userAssignedIdentityID` names: the provider sends it as a resource id when it contains
/// `/subscriptions/` (case-insensitive), else as a client id (`newAuthProviderWithManagedIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAssignedIdentity {
    ClientId(String),
    ResourceId(String),
}

macro_rules! kind_type {
    (str) => { String };
    (secret) => { Secret };
    (bool) => { bool };
    (int) => { i64 };
    (float) => { f64 };
    (strmap) => { BTreeMap<String, String> };
    (strlist) => { Vec<String> };
}

/// Declares the plain (scalar or map) settings: the struct fields, and the key table used by
/// the case-insensitive matcher. Every key is the Go JSON tag (domain.md §7.4).
macro_rules! settings {
    ($( $(#[$m:meta])* $field:ident : $kind:ident = $key:literal ),* $(,)?) => {
        /// Every scalar setting of the config, `None` when absent (or of the wrong type; see
        /// [`CloudConfig::problems`]).
        #[derive(Debug, Clone, Default)]
        pub struct Settings {
            $( $(#[$m])* pub $field: Option<kind_type!($kind)>, )*
        }

        impl Settings {
            /// Assigns `value` to the setting named `key` (any case); false when unknown.
            fn assign(&mut self, key: &str, value: &Value, path: &str, problems: &mut Vec<Problem>) -> bool {
                $(
                    if key.eq_ignore_ascii_case($key) {
                        self.$field = convert::$kind(value, path, problems);
                        return true;
                    }
                )*
                false
            }
        }

        /// The Go JSON tags of the scalar settings.
        pub const SCALAR_KEYS: &[&str] = &[$($key),*];
    };
}

settings! {
    // Auth and ARM.
    /// `cloud`: `AzurePublicCloud`, `AzureChinaCloud`, `AzureUSGovernmentCloud`, `AzureStackCloud`.
    cloud: str = "cloud",
    tenant_id: str = "tenantId",
    subscription_id: str = "subscriptionId",
    aad_client_id: str = "aadClientId",
    aad_client_secret: secret = "aadClientSecret",
    aad_client_cert_path: str = "aadClientCertPath",
    aad_client_cert_password: secret = "aadClientCertPassword",
    use_managed_identity_extension: bool = "useManagedIdentityExtension",
    user_assigned_identity_id: str = "userAssignedIdentityID",
    aad_federated_token_file: str = "aadFederatedTokenFile",
    use_federated_workload_identity_extension: bool = "useFederatedWorkloadIdentityExtension",
    aad_msi_data_plane_identity_path: str = "aadMSIDataPlaneIdentityPath",
    /// `adfs` on Azure Stack Hub with AD FS.
    identity_system: str = "identitySystem",
    network_resource_tenant_id: str = "networkResourceTenantID",
    network_resource_subscription_id: str = "networkResourceSubscriptionID",
    /// Set on Azure Stack Hub: the provider discovers the cloud's endpoints from
    /// `<resourceManagerEndpoint>/metadata/endpoints`.
    resource_manager_endpoint: str = "resourceManagerEndpoint",
    user_agent: str = "userAgent",
    disable_azure_stack_cloud: bool = "disableAzureStackCloud",
    enable_minimum_retry_after: bool = "enableMinimumRetryAfter",
    /// `file`, `secret` or `merge` (default).
    cloud_config_type: str = "cloudConfigType",
    // Cluster.
    resource_group: str = "resourceGroup",
    location: str = "location",
    extended_location_name: str = "extendedLocationName",
    extended_location_type: str = "extendedLocationType",
    vnet_name: str = "vnetName",
    vnet_resource_group: str = "vnetResourceGroup",
    subnet_name: str = "subnetName",
    security_group_name: str = "securityGroupName",
    security_group_resource_group: str = "securityGroupResourceGroup",
    route_table_name: str = "routeTableName",
    route_table_resource_group: str = "routeTableResourceGroup",
    primary_availability_set_name: str = "primaryAvailabilitySetName",
    primary_scale_set_name: str = "primaryScaleSetName",
    /// `vmss` (default since v1.28), `standard` or `vmssflex`.
    vm_type: str = "vmType",
    /// `basic`, `standard` (default) or `service`.
    load_balancer_sku: str = "loadBalancerSku",
    load_balancer_name: str = "loadBalancerName",
    load_balancer_resource_group: str = "loadBalancerResourceGroup",
    /// `""`, `internal`, `external` or `all`.
    pre_configured_backend_pool_load_balancer_types: str = "preConfiguredBackendPoolLoadBalancerTypes",
    disable_availability_set_nodes: bool = "disableAvailabilitySetNodes",
    enable_vmss_flex_nodes: bool = "enableVmssFlexNodes",
    use_instance_metadata: bool = "useInstanceMetadata",
    exclude_master_from_standard_lb: bool = "excludeMasterFromStandardLB",
    disable_outbound_snat: bool = "disableOutboundSNAT",
    maximum_load_balancer_rule_count: int = "maximumLoadBalancerRuleCount",
    /// `nodeIPConfiguration` (default), `nodeIP` or `podIP`.
    load_balancer_backend_pool_configuration_type: str = "loadBalancerBackendPoolConfigurationType",
    put_vmss_vm_batch_size: int = "putVMSSVMBatchSize",
    private_link_service_resource_group: str = "privateLinkServiceResourceGroup",
    enable_migrate_to_ip_based_backend_pool_api: bool = "enableMigrateToIPBasedBackendPoolAPI",
    enable_ip_tag_mutation_for_existing_public_ip: bool = "enableIPTagMutationForExistingPublicIP",
    route_update_interval_in_seconds: int = "routeUpdateIntervalInSeconds",
    load_balancer_backend_pool_update_interval_in_seconds: int = "loadBalancerBackendPoolUpdateIntervalInSeconds",
    /// `servicenodeport` (default) or `shared`.
    cluster_service_load_balancer_health_probe_mode: str = "clusterServiceLoadBalancerHealthProbeMode",
    cluster_service_shared_load_balancer_health_probe_port: int = "clusterServiceSharedLoadBalancerHealthProbePort",
    cluster_service_shared_load_balancer_health_probe_path: str = "clusterServiceSharedLoadBalancerHealthProbePath",
    service_gateway_enabled: bool = "serviceGatewayEnabled",
    node_instance_not_found_grace_period_in_seconds: int = "nodeInstanceNotFoundGracePeriodInSeconds",
    /// `a=b,c=d`.
    tags: str = "tags",
    tags_map: strmap = "tagsMap",
    system_tags: str = "systemTags",
    pod_cidr_ipv4: strlist = "podCidrIPv4",
    pod_cidr_ipv6: strlist = "podCidrIPv6",
    // Caches (`CPA:pkg/provider/config/azure_cache.go`).
    disable_api_call_cache: bool = "disableAPICallCache",
    non_vmss_uniform_nodes_cache_ttl_in_seconds: int = "nonVmssUniformNodesCacheTTLInSeconds",
    vmss_cache_ttl_in_seconds: int = "vmssCacheTTLInSeconds",
    vmss_virtual_machines_cache_ttl_in_seconds: int = "vmssVirtualMachinesCacheTTLInSeconds",
    vmss_virtual_machine_cache_instance_view: bool = "vmssVirtualMachineCacheInstanceView",
    list_vmss_virtual_machines_without_instance_view: bool = "listVmssVirtualMachinesWithoutInstanceView",
    vmss_flex_cache_ttl_in_seconds: int = "vmssFlexCacheTTLInSeconds",
    vmss_flex_vm_cache_ttl_in_seconds: int = "vmssFlexVMCacheTTLInSeconds",
    vm_cache_ttl_in_seconds: int = "vmCacheTTLInSeconds",
    load_balancer_cache_ttl_in_seconds: int = "loadBalancerCacheTTLInSeconds",
    nsg_cache_ttl_in_seconds: int = "nsgCacheTTLInSeconds",
    route_table_cache_ttl_in_seconds: int = "routeTableCacheTTLInSeconds",
    pls_cache_ttl_in_seconds: int = "plsCacheTTLInSeconds",
    availability_sets_cache_ttl_in_seconds: int = "availabilitySetsCacheTTLInSeconds",
    public_ip_cache_ttl_in_seconds: int = "publicIPCacheTTLInSeconds",
    route_update_waiting_in_seconds: int = "routeUpdateWaitingInSeconds",
    // Backoff.
    cloud_provider_backoff: bool = "cloudProviderBackoff",
    /// `v2` on older clusters; ignored by current providers.
    cloud_provider_backoff_mode: str = "cloudProviderBackoffMode",
    cloud_provider_backoff_retries: int = "cloudProviderBackoffRetries",
    cloud_provider_backoff_exponent: float = "cloudProviderBackoffExponent",
    cloud_provider_backoff_duration: int = "cloudProviderBackoffDuration",
    cloud_provider_backoff_jitter: float = "cloudProviderBackoffJitter",
}

/// Keys of the top-level rate-limit block (`azclients.RateLimitConfig`).
const RATE_LIMIT_KEYS: &[&str] = &[
    "cloudProviderRateLimit",
    "cloudProviderRateLimitQPS",
    "cloudProviderRateLimitBucket",
    "cloudProviderRateLimitQPSWrite",
    "cloudProviderRateLimitBucketWrite",
];

/// Per-client rate-limit blocks (`CPA:pkg/provider/config/azure_ratelimit.go`).
pub const CLIENT_RATE_LIMIT_KEYS: &[&str] = &[
    "routeRateLimit",
    "subnetsRateLimit",
    "interfaceRateLimit",
    "routeTableRateLimit",
    "loadBalancerRateLimit",
    "publicIPAddressRateLimit",
    "securityGroupRateLimit",
    "virtualMachineRateLimit",
    "storageAccountRateLimit",
    "diskRateLimit",
    "snapshotRateLimit",
    "virtualMachineScaleSetRateLimit",
    "virtualMachineSizesRateLimit",
    "availabilitySetRateLimit",
    "attachDetachDiskRateLimit",
    "containerServiceRateLimit",
    "deploymentRateLimit",
    "privateDNSRateLimit",
    "privateDNSZoneGroupRateLimit",
    "privateEndpointRateLimit",
    "privateLinkServiceRateLimit",
    "virtualNetworkRateLimit",
];

/// Keys older AKS and aks-engine configs carry that current providers no longer read (Key Vault
/// KMS settings, the pre-`vmType` VM type); known, so they are not reported as typos.
const LEGACY_KEYS: &[&str] = &[
    "providerVaultName",
    "providerKeyName",
    "providerKeyVersion",
    "useInstanceMetadataService",
    "kubeletClientCertPath",
];

/// The parsed config.
#[derive(Debug, Clone, Default)]
pub struct CloudConfig {
    /// Where it came from: a path, or `secret kube-system/azure-cloud-provider`.
    pub origin: String,
    pub settings: Settings,
    pub auxiliary_token_provider: Option<AuxiliaryTokenProvider>,
    /// The top-level `cloudProviderRateLimit*` block.
    pub rate_limit: RateLimit,
    /// Per-client blocks by their key (`loadBalancerRateLimit`, ...).
    pub client_rate_limits: BTreeMap<String, RateLimit>,
    pub multiple_standard_load_balancer_configurations: Vec<MultiSlbConfig>,
    /// Everything that looked wrong, in document order.
    pub problems: Vec<Problem>,
}

impl CloudConfig {
    /// Reads and parses a file (`--cloud-config`).
    pub fn load(path: &Path) -> Result<CloudConfig, CloudConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| CloudConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        CloudConfig::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a config (JSON, or YAML as the provider also accepts).
    pub fn parse(text: &str, origin: &str) -> Result<CloudConfig, CloudConfigError> {
        let syntax = |detail: String| CloudConfigError::Syntax {
            origin: origin.to_string(),
            detail,
        };
        let entries: Entries = match serde_json::from_str(text) {
            Ok(e) => e,
            // JSON-looking text is judged as JSON (YAML would accept a trailing comma that the
            // provider's JSON decoder refuses).
            Err(e) if text.trim_start().starts_with(['{', '[']) => return Err(syntax(e.to_string())),
            // Otherwise it may be YAML, which the provider's loader (sigs.k8s.io/yaml) also
            // takes; only a mapping counts.
            Err(json_err) => {
                serde_yaml::from_str::<Entries>(text).map_err(|_| syntax(json_err.to_string()))?
            }
        };
        let mut c = CloudConfig {
            origin: origin.to_string(),
            ..CloudConfig::default()
        };
        c.read_entries(entries.0);
        c.validate();
        Ok(c)
    }

    /// Parses the `kube-system/azure-cloud-provider` Secret as the Kubernetes API returns it:
    /// `data.cloud-config` (base64), or `stringData.cloud-config` in a manifest.
    pub fn from_secret(secret: &Value, origin: &str) -> Result<CloudConfig, CloudConfigError> {
        use base64::Engine;
        let err = |detail: &str| CloudConfigError::Secret {
            origin: origin.to_string(),
            detail: detail.to_string(),
        };
        let text = if let Some(b64) = secret.pointer("/data/cloud-config").and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| err("data.cloud-config is not valid base64"))?;
            String::from_utf8(bytes).map_err(|_| err("data.cloud-config is not UTF-8 text"))?
        } else if let Some(s) = secret.pointer("/stringData/cloud-config").and_then(Value::as_str) {
            s.to_string()
        } else {
            return Err(err("it has no cloud-config key"));
        };
        CloudConfig::parse(&text, origin)
    }

    fn problem(&mut self, path: String, level: ProblemLevel, message: impl Into<String>) {
        self.problems.push(Problem {
            path,
            level,
            message: message.into(),
        });
    }

    fn read_entries(&mut self, entries: Vec<(String, Value)>) {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in entries {
            let path = format!("$.{key}");
            if let Some(first) = seen.insert(key.to_ascii_lowercase(), key.clone()) {
                self.problem(
                    path.clone(),
                    ProblemLevel::Warning,
                    format!(
                        "{key:?} repeats {first:?} (keys are case-insensitive); the later one wins, as in the provider: keep one"
                    ),
                );
            }
            let mut problems = Vec::new();
            if self.settings.assign(&key, &value, &path, &mut problems) {
                self.problems.extend(problems);
                continue;
            }
            if let Some(k) = RATE_LIMIT_KEYS.iter().find(|k| k.eq_ignore_ascii_case(&key)) {
                let mut rl = std::mem::take(&mut self.rate_limit);
                rate_limit_field(&mut rl, k, &value, &path, &mut self.problems);
                self.rate_limit = rl;
                continue;
            }
            if let Some(k) = CLIENT_RATE_LIMIT_KEYS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(&key))
            {
                let rl = self.rate_limit_block(&value, &path);
                self.client_rate_limits.insert(k.to_string(), rl);
                continue;
            }
            if key.eq_ignore_ascii_case("auxiliaryTokenProvider") {
                self.auxiliary_token_provider = self.auxiliary(&value, &path);
                continue;
            }
            if key.eq_ignore_ascii_case("multipleStandardLoadBalancerConfigurations") {
                self.multiple_standard_load_balancer_configurations = self.multi_slb(&value, &path);
                continue;
            }
            if LEGACY_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&key)) {
                continue;
            }
            let hint = closest_key(&key)
                .map(|k| format!(" (did you mean {k:?}?)"))
                .unwrap_or_default();
            self.problem(
                path,
                ProblemLevel::Info,
                format!("unknown key {key:?}{hint}: the provider ignores it; remove it or fix its name"),
            );
        }
    }

    fn object<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v serde_json::Map<String, Value>> {
        match value {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                self.problem(
                    path.to_string(),
                    ProblemLevel::Error,
                    format!(
                        "expected an object, found {}: the provider refuses the config; write an object",
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }

    fn rate_limit_block(&mut self, value: &Value, path: &str) -> RateLimit {
        let mut rl = RateLimit::default();
        let Some(m) = self.object(value, path) else {
            return rl;
        };
        for (k, v) in m {
            let p = format!("{path}.{k}");
            match RATE_LIMIT_KEYS.iter().find(|x| x.eq_ignore_ascii_case(k)) {
                Some(known) => rate_limit_field(&mut rl, known, v, &p, &mut self.problems),
                None => self.problem(
                    p,
                    ProblemLevel::Info,
                    format!("unknown key {k:?} in a rate-limit block: the provider ignores it"),
                ),
            }
        }
        rl
    }

    fn auxiliary(&mut self, value: &Value, path: &str) -> Option<AuxiliaryTokenProvider> {
        let m = self.object(value, path)?;
        let mut a = AuxiliaryTokenProvider::default();
        for (k, v) in m {
            let p = format!("{path}.{k}");
            let slot = match k.to_ascii_lowercase().as_str() {
                "subscriptionid" => &mut a.subscription_id,
                "resourcegroup" => &mut a.resource_group,
                "vaultname" => &mut a.vault_name,
                "secretname" => &mut a.secret_name,
                _ => {
                    self.problem(
                        p,
                        ProblemLevel::Info,
                        format!("unknown key {k:?}: the provider ignores it"),
                    );
                    continue;
                }
            };
            *slot = convert::str(v, &p, &mut self.problems);
        }
        Some(a)
    }

    fn multi_slb(&mut self, value: &Value, path: &str) -> Vec<MultiSlbConfig> {
        let items = match value {
            Value::Array(a) => a,
            Value::Null => return Vec::new(),
            other => {
                self.problem(
                    path.to_string(),
                    ProblemLevel::Error,
                    format!(
                        "expected a list, found {}: the provider refuses the config",
                        json_kind(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let Some(m) = self.object(item, &ip) else { continue };
            let mut c = MultiSlbConfig::default();
            for (k, v) in m {
                let p = format!("{ip}.{k}");
                match k.to_ascii_lowercase().as_str() {
                    "name" => c.name = convert::str(v, &p, &mut self.problems),
                    "allowserviceplacement" => {
                        c.allow_service_placement = convert::bool(v, &p, &mut self.problems)
                    }
                    "primaryvmset" => c.primary_vm_set = convert::str(v, &p, &mut self.problems),
                    "servicelabelselector" => c.service_label_selector = Some(v.clone()),
                    "servicenamespaceselector" => c.service_namespace_selector = Some(v.clone()),
                    "nodeselector" => c.node_selector = Some(v.clone()),
                    // Status fields the provider writes back; not configuration.
                    "activeservices" | "activenodes" => {}
                    _ => self.problem(
                        p,
                        ProblemLevel::Info,
                        format!("unknown key {k:?}: the provider ignores it"),
                    ),
                }
            }
            if c.name.as_deref().is_none_or(str::is_empty) {
                self.problem(
                    ip,
                    ProblemLevel::Error,
                    "a multiple-standard-load-balancer entry without a name: the provider refuses it; name it after the load balancer",
                );
            }
            out.push(c);
        }
        out
    }

    /// Checks values against what the provider accepts (compared with `EqualFold`, as it does).
    fn validate(&mut self) {
        let s = self.settings.clone();
        let one_of =
            |c: &mut CloudConfig, key: &str, v: &Option<String>, allowed: &[&str], fallback: &str| {
                if let Some(v) = v
                    && !allowed.iter().any(|a| a.eq_ignore_ascii_case(v.trim()))
                {
                    c.problem(
                        format!("$.{key}"),
                        ProblemLevel::Warning,
                        format!(
                            "{key} {v:?} is not one of {}: {fallback}",
                            allowed
                                .iter()
                                .map(|a| format!("{a:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            };
        if let Some(cloud) = &s.cloud
            && crate::auth::Cloud::by_name(cloud).is_none()
            && !cloud.trim().eq_ignore_ascii_case("AzureStackCloud")
        {
            self.problem(
                "$.cloud".into(),
                ProblemLevel::Warning,
                format!(
                    "unknown cloud {cloud:?}: the provider silently uses AzurePublicCloud; use AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud or AzureStackCloud"
                ),
            );
        }
        if s.cloud
            .as_deref()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("AzureStackCloud"))
            && s.resource_manager_endpoint.is_none()
            && s.disable_azure_stack_cloud != Some(true)
        {
            self.problem(
                "$.resourceManagerEndpoint".into(),
                ProblemLevel::Warning,
                "cloud is AzureStackCloud but resourceManagerEndpoint is not set: set it to the hub's ARM endpoint so its endpoints can be discovered",
            );
        }
        one_of(
            self,
            "vmType",
            &s.vm_type,
            &["vmss", "standard", "vmssflex"],
            "the provider treats unknown values as vmss",
        );
        one_of(
            self,
            "loadBalancerSku",
            &s.load_balancer_sku,
            &["basic", "standard", "service"],
            "the provider then behaves as for basic; fix the value",
        );
        one_of(
            self,
            "loadBalancerBackendPoolConfigurationType",
            &s.load_balancer_backend_pool_configuration_type,
            &["nodeIPConfiguration", "nodeIP", "podIP"],
            "the provider refuses to start; fix the value",
        );
        one_of(
            self,
            "preConfiguredBackendPoolLoadBalancerTypes",
            &s.pre_configured_backend_pool_load_balancer_types,
            &["", "internal", "external", "all"],
            "the provider refuses to start; fix the value",
        );
        one_of(
            self,
            "clusterServiceLoadBalancerHealthProbeMode",
            &s.cluster_service_load_balancer_health_probe_mode,
            &["servicenodeport", "shared"],
            "the provider refuses to start; fix the value",
        );
        one_of(
            self,
            "cloudConfigType",
            &s.cloud_config_type,
            &["file", "secret", "merge"],
            "the provider refuses to start; fix the value",
        );
        if s.user_assigned_identity_id
            .as_deref()
            .is_some_and(|v| !v.is_empty())
            && s.use_managed_identity_extension != Some(true)
        {
            self.problem(
                "$.userAssignedIdentityID".into(),
                ProblemLevel::Info,
                "userAssignedIdentityID is set but useManagedIdentityExtension is not true: the provider ignores the identity",
            );
        }
        if !self.multiple_standard_load_balancer_configurations.is_empty()
            && !s
                .load_balancer_backend_pool_configuration_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("nodeIP"))
        {
            self.problem(
                "$.multipleStandardLoadBalancerConfigurations".into(),
                ProblemLevel::Warning,
                "multiple standard load balancers need loadBalancerBackendPoolConfigurationType nodeIP; the provider ignores the list otherwise",
            );
        }
        if let Some(n) = s.maximum_load_balancer_rule_count
            && n <= 0
        {
            self.problem(
                "$.maximumLoadBalancerRuleCount".into(),
                ProblemLevel::Warning,
                format!("maximumLoadBalancerRuleCount {n} is not positive: the provider uses 250"),
            );
        }
    }

    // Effective values, with the provider's defaults (`InitializeCloudFromConfig`).

    fn nonempty(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn tenant_id(&self) -> Option<&str> {
        Self::nonempty(&self.settings.tenant_id)
    }
    pub fn subscription_id(&self) -> Option<&str> {
        Self::nonempty(&self.settings.subscription_id)
    }
    pub fn resource_group(&self) -> Option<&str> {
        Self::nonempty(&self.settings.resource_group)
    }
    /// `securityGroupResourceGroup`, defaulting to `resourceGroup`.
    pub fn security_group_resource_group(&self) -> Option<&str> {
        Self::nonempty(&self.settings.security_group_resource_group).or(self.resource_group())
    }
    /// `routeTableResourceGroup`, defaulting to `resourceGroup`.
    pub fn route_table_resource_group(&self) -> Option<&str> {
        Self::nonempty(&self.settings.route_table_resource_group).or(self.resource_group())
    }
    /// `privateLinkServiceResourceGroup`, defaulting to `resourceGroup`.
    pub fn private_link_service_resource_group(&self) -> Option<&str> {
        Self::nonempty(&self.settings.private_link_service_resource_group).or(self.resource_group())
    }
    /// `loadBalancerResourceGroup`, defaulting to `resourceGroup` (`getLoadBalancerResourceGroup`).
    pub fn load_balancer_resource_group(&self) -> Option<&str> {
        Self::nonempty(&self.settings.load_balancer_resource_group).or(self.resource_group())
    }
    /// `vnetResourceGroup`, defaulting to `resourceGroup`.
    pub fn vnet_resource_group(&self) -> Option<&str> {
        Self::nonempty(&self.settings.vnet_resource_group).or(self.resource_group())
    }
    /// `vmType` lower-cased, default `vmss`.
    pub fn vm_type(&self) -> String {
        Self::nonempty(&self.settings.vm_type)
            .unwrap_or("vmss")
            .to_ascii_lowercase()
    }
    /// `loadBalancerSku` lower-cased, default `standard`.
    pub fn load_balancer_sku(&self) -> String {
        Self::nonempty(&self.settings.load_balancer_sku)
            .unwrap_or("standard")
            .to_ascii_lowercase()
    }
    /// `excludeMasterFromStandardLB`, default true.
    pub fn exclude_master_from_standard_lb(&self) -> bool {
        self.settings.exclude_master_from_standard_lb.unwrap_or(true)
    }
    /// `maximumLoadBalancerRuleCount`, default 250.
    pub fn maximum_load_balancer_rule_count(&self) -> i64 {
        self.settings
            .maximum_load_balancer_rule_count
            .filter(|n| *n > 0)
            .unwrap_or(250)
    }
    /// `clusterServiceLoadBalancerHealthProbeMode` is `shared`.
    pub fn shared_health_probe(&self) -> bool {
        self.settings
            .cluster_service_load_balancer_health_probe_mode
            .as_deref()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("shared"))
    }
    /// `aadClientId`, unless it is AKS's `msi` placeholder.
    pub fn aad_client_id(&self) -> Option<&str> {
        Self::nonempty(&self.settings.aad_client_id).filter(|c| !c.eq_ignore_ascii_case("msi"))
    }
    /// `aadClientSecret`, unless it is AKS's `msi` placeholder.
    pub fn aad_client_secret(&self) -> Option<&Secret> {
        self.settings
            .aad_client_secret
            .as_ref()
            .filter(|s| !s.is_empty() && !s.expose().eq_ignore_ascii_case("msi"))
    }
    /// `userAssignedIdentityID`, as client id or resource id.
    pub fn user_assigned_identity(&self) -> Option<UserAssignedIdentity> {
        let v = Self::nonempty(&self.settings.user_assigned_identity_id)?;
        Some(if v.to_ascii_lowercase().contains("/subscriptions/") {
            UserAssignedIdentity::ResourceId(v.to_string())
        } else {
            UserAssignedIdentity::ClientId(v.to_string())
        })
    }
    /// The worst problem level, if any.
    pub fn worst_problem(&self) -> Option<ProblemLevel> {
        self.problems.iter().map(|p| p.level).max()
    }
}

fn rate_limit_field(rl: &mut RateLimit, key: &str, v: &Value, path: &str, problems: &mut Vec<Problem>) {
    match key {
        "cloudProviderRateLimit" => rl.enabled = convert::bool(v, path, problems),
        "cloudProviderRateLimitQPS" => rl.qps = convert::float(v, path, problems),
        "cloudProviderRateLimitBucket" => rl.bucket = convert::int(v, path, problems),
        "cloudProviderRateLimitQPSWrite" => rl.qps_write = convert::float(v, path, problems),
        "cloudProviderRateLimitBucketWrite" => rl.bucket_write = convert::int(v, path, problems),
        _ => {}
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A known key that differs from `key` only by separators or one edit, for "did you mean".
fn closest_key(key: &str) -> Option<&'static str> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    let k = norm(key);
    let all = SCALAR_KEYS
        .iter()
        .chain(RATE_LIMIT_KEYS)
        .chain(CLIENT_RATE_LIMIT_KEYS)
        .chain(
            [
                "auxiliaryTokenProvider",
                "multipleStandardLoadBalancerConfigurations",
            ]
            .iter(),
        );
    let mut best: Option<(&'static str, usize)> = None;
    for cand in all {
        let d = edit_distance(&k, &norm(cand));
        if d <= 2 && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((cand, d));
        }
    }
    best.map(|(c, _)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Converters from JSON values to setting types with Go's strictness: a value of another JSON
/// type is an error (`json: cannot unmarshal string into Go struct field ... of type bool`), and
/// `null` leaves the setting unset, as in Go.
mod convert {
    use super::*;

    fn wrong(v: &Value, path: &str, want: &str, problems: &mut Vec<Problem>) {
        problems.push(Problem {
            path: path.to_string(),
            level: ProblemLevel::Error,
            message: format!(
                "expected {want}, found {}: the provider refuses to load this config (Go's JSON decoder does not convert types); write {want}",
                match v {
                    Value::String(s) => format!("the string {s:?}"),
                    other => json_kind(other).to_string(),
                }
            ),
        });
    }

    pub fn str(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => {
                wrong(other, path, "a string", problems);
                None
            }
        }
    }

    /// Secrets: like [`str`], but the value never appears in a problem message.
    pub fn secret(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Secret> {
        match v {
            Value::String(s) => Some(Secret::new(s.clone())),
            Value::Null => None,
            _ => {
                problems.push(Problem {
                    path: path.to_string(),
                    level: ProblemLevel::Error,
                    message: "expected a string: the provider refuses to load this config; write the value as a JSON string".into(),
                });
                None
            }
        }
    }

    pub fn bool(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Null => None,
            other => {
                wrong(other, path, "true or false", problems);
                None
            }
        }
    }

    pub fn int(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<i64> {
        match v {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            Value::Null => None,
            other => {
                wrong(other, path, "a whole number", problems);
                None
            }
        }
    }

    pub fn float(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::Null => None,
            other => {
                wrong(other, path, "a number", problems);
                None
            }
        }
    }

    pub fn strmap(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<BTreeMap<String, String>> {
        match v {
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    if let Some(s) = str(v, &format!("{path}.{k}"), problems) {
                        out.insert(k.clone(), s);
                    }
                }
                Some(out)
            }
            Value::Null => None,
            other => {
                wrong(other, path, "an object of strings", problems);
                None
            }
        }
    }

    pub fn strlist(v: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Vec<String>> {
        match v {
            Value::Array(a) => Some(
                a.iter()
                    .enumerate()
                    .filter_map(|(i, x)| str(x, &format!("{path}[{i}]"), problems))
                    .collect(),
            ),
            Value::Null => None,
            other => {
                wrong(other, path, "a list of strings", problems);
                None
            }
        }
    }
}

/// The top-level object's entries in document order (serde_json's map sorts keys, and the
/// order decides which of two spellings of a key wins).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = map.next_entry::<String, Value>()? {
                    v.push((k, val));
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_case_insensitively_and_defaults_apply() {
        let c = CloudConfig::parse(
            r#"{"Cloud":"AzureChinaCloud","tenantID":"t","AADCLIENTID":"c","aadClientSecret":"s3cret",
                "subscriptionId":"sub","resourceGroup":"rg","cloudProviderRatelimit":true,
                "CloudProviderRateLimitBucketWrite":7,"cloudProviderRateLimitQPS":1.5,
                "loadBalancerRateLimit":{"cloudProviderRateLimitQPS":2},"useManagedIdentityExtension":true,
                "userAssignedIdentityID":"/SUBSCRIPTIONS/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"}"#,
            "t.json",
        )
        .unwrap();
        assert_eq!(c.settings.cloud.as_deref(), Some("AzureChinaCloud"));
        assert_eq!(c.tenant_id(), Some("t"));
        assert_eq!(c.aad_client_id(), Some("c"));
        assert_eq!(c.aad_client_secret().map(Secret::expose), Some("s3cret"));
        assert_eq!(c.security_group_resource_group(), Some("rg"));
        assert_eq!(c.load_balancer_resource_group(), Some("rg"));
        assert_eq!(c.vm_type(), "vmss");
        assert_eq!(c.load_balancer_sku(), "standard");
        assert!(c.exclude_master_from_standard_lb());
        assert_eq!(c.maximum_load_balancer_rule_count(), 250);
        assert_eq!(c.rate_limit.enabled, Some(true));
        assert_eq!(c.rate_limit.bucket_write, Some(7));
        assert_eq!(c.rate_limit.qps, Some(1.5));
        assert_eq!(c.client_rate_limits["loadBalancerRateLimit"].qps, Some(2.0));
        assert!(matches!(
            c.user_assigned_identity(),
            Some(UserAssignedIdentity::ResourceId(_))
        ));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        // The secret never shows in Debug.
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn problems_carry_paths() {
        let c = CloudConfig::parse(
            r#"{"useManagedIdentityExtension":"true","maximumLoadBalancerRuleCount":10.5,
                "vmType":"VMSSFLEX","loadBalancerSku":"premium","resourceGroop":"x",
                "tenantId":"a","TENANTID":"b","aadClientSecret":42,
                "multipleStandardLoadBalancerConfigurations":[{"name":"kubernetes"},{"primaryVMSet":"p"}],
                "cloud":"Mars"}"#,
            "t.json",
        )
        .unwrap();
        let find = |p: &str| {
            c.problems
                .iter()
                .find(|x| x.path == p)
                .unwrap_or_else(|| panic!("no problem at {p}: {:?}", c.problems))
        };
        assert_eq!(find("$.useManagedIdentityExtension").level, ProblemLevel::Error);
        assert!(
            find("$.useManagedIdentityExtension")
                .message
                .contains("the string \"true\"")
        );
        assert_eq!(find("$.maximumLoadBalancerRuleCount").level, ProblemLevel::Error);
        assert!(find("$.resourceGroop").message.contains("resourceGroup"));
        assert_eq!(find("$.loadBalancerSku").level, ProblemLevel::Warning);
        assert!(find("$.TENANTID").message.contains("later one wins"));
        assert_eq!(c.tenant_id(), Some("b"));
        assert_eq!(
            find("$.multipleStandardLoadBalancerConfigurations[1]").level,
            ProblemLevel::Error
        );
        assert!(find("$.cloud").message.contains("AzurePublicCloud"));
        assert!(!c.problems.iter().any(|p| p.path == "$.vmType"));
        assert_eq!(c.vm_type(), "vmssflex");
        assert!(c.settings.use_managed_identity_extension.is_none());
        assert_eq!(c.worst_problem(), Some(ProblemLevel::Error));
    }

    #[test]
    fn yaml_secret_and_aks_placeholders() {
        let c = CloudConfig::parse(
            "cloud: AZUREPUBLICCLOUD\nresourceGroup: \"rg\"\ncloudProviderBackoffExponent: 1.5\naadClientId: msi\naadClientSecret: msi\n",
            "y",
        )
        .unwrap();
        assert_eq!(c.resource_group(), Some("rg"));
        assert_eq!(c.settings.cloud_provider_backoff_exponent, Some(1.5));
        assert_eq!(c.aad_client_id(), None);
        assert!(c.aad_client_secret().is_none());
        assert!(CloudConfig::parse("{\"a\":", "x").is_err());
        assert!(CloudConfig::parse("{\"a\": 1,}", "x").is_err());
        assert!(CloudConfig::parse("just text", "x").is_err());

        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"tenantId":"t"}"#);
        let secret = serde_json::json!({"data": {"cloud-config": b64}});
        let c = CloudConfig::from_secret(&secret, "secret").unwrap();
        assert_eq!(c.tenant_id(), Some("t"));
        assert!(CloudConfig::from_secret(&serde_json::json!({"data": {}}), "s").is_err());
    }

    #[test]
    fn every_key_of_the_real_aks_file_is_known() {
        // Keys of a real AKS /etc/kubernetes/azure.json (mocks/tests/worlds/basic).
        let text = r#"{"cloud":"AzurePublicCloud","tenantId":"t","subscriptionId":"s","aadClientId":"msi",
            "aadClientSecret":"msi","resourceGroup":"MC_x","location":"westeurope","vmType":"vmss",
            "subnetName":"a","securityGroupName":"b","vnetName":"c","vnetResourceGroup":"","routeTableName":"d",
            "primaryAvailabilitySetName":"","primaryScaleSetName":"e","cloudProviderBackoffMode":"v2",
            "cloudProviderBackoff":true,"cloudProviderBackoffRetries":6,"cloudProviderBackoffDuration":5,
            "cloudProviderRateLimit":true,"cloudProviderRateLimitQPS":10,"cloudProviderRateLimitBucket":100,
            "cloudProviderRateLimitQPSWrite":10,"cloudProviderRateLimitBucketWrite":100,
            "useManagedIdentityExtension":true,"userAssignedIdentityID":"6a1b2c3d","useInstanceMetadata":true,
            "loadBalancerSku":"Standard","disableOutboundSNAT":false,"excludeMasterFromStandardLB":true,
            "providerVaultName":"","maximumLoadBalancerRuleCount":250,"providerKeyName":"k8s","providerKeyVersion":""}"#;
        let c = CloudConfig::parse(text, "aks").unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.vnet_resource_group(), Some("MC_x"));
        assert_eq!(
            c.user_assigned_identity(),
            Some(UserAssignedIdentity::ClientId("6a1b2c3d".into()))
        );
    }
}
