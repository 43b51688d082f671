//! Azure clouds: ARM endpoint, authority host and token audience (domain.md §7.5), custom
//! clouds (`--arm-endpoint` + `--authority-host`) and Azure Stack Hub discovery from
//! `<arm>/metadata/endpoints` (what cloud-provider-azure's
//! `OverrideAzureCloudConfigAndEnvConfigFromMetadataService` does when `resourceManagerEndpoint`
//! is set, `CPA:pkg/azclient/cloud.go`).
//!
//! Discovery is the only network call here, and it happens only when asked for (`--discover`
//! or azure.json's `resourceManagerEndpoint`): a read-only auditor must not go looking for
//! endpoints on its own. Unknown cloud names are errors, never a silent fall-back to the
//! public cloud (which the provider does, and which would send credentials to the wrong cloud).

use std::time::Duration;

use url::Url;

use super::guard;

/// Where ARM and Entra ID are, and what audience tokens are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// `AzurePublicCloud`, `AzureChinaCloud`, `AzureUSGovernmentCloud`, `custom`, or the name an
    /// Azure Stack Hub's metadata gives.
    pub name: String,
    /// ARM base URL with a trailing slash, e.g. `https://management.azure.com/`.
    pub arm_endpoint: Url,
    /// Entra ID authority host with a trailing slash, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Token audience, e.g. `https://management.azure.com/`.
    pub audience: String,
}

/// What went wrong choosing the cloud.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(
        "unknown cloud {name:?}: use AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud, or describe a custom cloud with --arm-endpoint and --authority-host (Azure Stack Hub: --arm-endpoint <hub ARM endpoint> --discover)"
    )]
    UnknownCloud { name: String },
    #[error(
        "--arm-endpoint {arm} needs the matching Entra ID authority: add --authority-host <url>, or --discover to read it from {arm}metadata/endpoints (Azure Stack Hub)"
    )]
    MissingAuthority { arm: String },
    #[error("{flag} {value:?} is not a usable URL ({detail}): give an absolute https:// URL")]
    BadUrl {
        flag: &'static str,
        value: String,
        detail: String,
    },
    #[error(
        "cloud discovery from {url} failed: {detail}: check --arm-endpoint (or azure.json resourceManagerEndpoint), or skip discovery and pass --authority-host (and --audience) yourself"
    )]
    Discovery { url: String, detail: String },
}

impl Cloud {
    /// The `scope` for token requests: audience without trailing slash + `/.default`
    /// (`DefaultTokenScopeFor`, `CPA:pkg/azclient/auth.go`).
    pub fn scope(&self) -> String {
        format!("{}/.default", self.audience.trim_end_matches('/'))
    }

    /// The `resource` managed identity and the Azure CLI ask for: the audience itself.
    pub fn resource(&self) -> &str {
        &self.audience
    }

    fn known(name: &str, arm: &str, authority: &str) -> Cloud {
        Cloud {
            name: name.to_string(),
            arm_endpoint: Url::parse(arm).expect("static URL"),
            authority_host: Url::parse(authority).expect("static URL"),
            audience: arm.to_string(),
        }
    }

    pub fn public() -> Cloud {
        Cloud::known(
            "AzurePublicCloud",
            "https://management.azure.com/",
            "https://login.microsoftonline.com/",
        )
    }
    pub fn china() -> Cloud {
        Cloud::known(
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn/",
            "https://login.chinacloudapi.cn/",
        )
    }
    pub fn us_government() -> Cloud {
        Cloud::known(
            "AzureUSGovernmentCloud",
            "https://management.usgovcloudapi.net/",
            "https://login.microsoftonline.us/",
        )
    }

    /// The cloud named as azure.json's `cloud` names it (case-insensitive, trimmed, as the
    /// provider does). Unlike the provider, an unknown name is an error, not a silent fallback
    /// to the public cloud.
    pub fn by_name(name: &str) -> Option<Cloud> {
        match name.trim().to_ascii_uppercase().as_str() {
            "AZURECLOUD" | "AZUREPUBLICCLOUD" | "PUBLIC" => Some(Cloud::public()),
            "AZURECHINACLOUD" | "CHINA" => Some(Cloud::china()),
            "AZUREUSGOVERNMENT" | "AZUREUSGOVERNMENTCLOUD" | "USGOVERNMENT" => Some(Cloud::us_government()),
            _ => None,
        }
    }

    /// A custom cloud; the audience defaults to the ARM endpoint (what ARM accepts for itself).
    pub fn custom(arm: Url, authority: Url, audience: Option<String>) -> Cloud {
        let audience = audience.unwrap_or_else(|| arm.to_string());
        Cloud {
            name: "custom".into(),
            arm_endpoint: arm,
            authority_host: authority,
            audience,
        }
    }
}

/// A URL as the rest of the code wants it: absolute, with a trailing slash so that `join`
/// appends rather than replaces the last segment.
pub fn normalise(flag: &'static str, raw: &str, require_https: bool) -> Result<Url, CloudError> {
    let bad = |detail: &str| CloudError::BadUrl {
        flag,
        value: raw.to_string(),
        detail: detail.to_string(),
    };
    let mut u = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if u.cannot_be_a_base() || u.host_str().is_none() {
        return Err(bad("no host"));
    }
    if require_https && u.scheme() != "https" {
        return Err(bad("credentials only travel over https"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub name: Option<String>,
    pub arm_endpoint: Url,
    pub authority_host: Url,
    pub audience: Option<String>,
}

/// `GET <arm>/metadata/endpoints?api-version=2019-05-01`. From that api-version ARM answers an
/// array of clouds (`[{name, resourceManager, authentication{loginEndpoint, audiences}, suffixes}]`);
/// older Azure Stack Hubs answer one object with `authentication`. The entry whose
/// `resourceManager` is this endpoint wins, else the first (`CPA:pkg/azclient/cloud.go`).
pub async fn discover(
    http: &reqwest::Client,
    arm: &Url,
    loopback_only: bool,
) -> Result<Discovered, CloudError> {
    let url = arm
        .join("metadata/endpoints?api-version=2019-05-01")
        .map_err(|e| CloudError::Discovery {
            url: arm.to_string(),
            detail: e.to_string(),
        })?;
    let fail = |detail: String| CloudError::Discovery {
        url: url.to_string(),
        detail,
    };
    guard::check(&url, loopback_only).map_err(|e| fail(e.to_string()))?;
    let resp = http
        .get(url.clone())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        // Classified so that a TLS trust failure carries the --ca-file advice.
        .map_err(|e| fail(super::AuthError::from_reqwest("discovery", &url, &e).to_string()))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON ({e})")))?;
    parse_metadata(&doc, arm).map_err(fail)
}

fn parse_metadata(doc: &serde_json::Value, arm: &Url) -> Result<Discovered, String> {
    let same = |s: &str| {
        s.trim_end_matches('/')
            .eq_ignore_ascii_case(arm.as_str().trim_end_matches('/'))
    };
    let entry = match doc {
        serde_json::Value::Array(items) => items
            .iter()
            .find(|e| {
                e.get("resourceManager")
                    .and_then(|v| v.as_str())
                    .is_some_and(same)
            })
            .or_else(|| items.first())
            .ok_or("the endpoint list is empty")?,
        serde_json::Value::Object(_) => doc,
        _ => return Err("neither a list of clouds nor a cloud object".into()),
    };
    let auth = entry.get("authentication").ok_or("no authentication section")?;
    let login = auth
        .get("loginEndpoint")
        .and_then(|v| v.as_str())
        .ok_or("no authentication.loginEndpoint")?;
    let authority_host = normalise("loginEndpoint", login, true).map_err(|e| e.to_string())?;
    let arm_endpoint = match entry.get("resourceManager").and_then(|v| v.as_str()) {
        Some(r) => normalise("resourceManager", r, true).map_err(|e| e.to_string())?,
        None => arm.clone(),
    };
    let audience = auth
        .get("audiences")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok(Discovered {
        name: entry.get("name").and_then(|v| v.as_str()).map(str::to_string),
        arm_endpoint,
        authority_host,
        audience,
    })
}

/// How the cloud was chosen, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudChoice {
    pub cloud: Cloud,
    /// `--cloud`, `azure.json cloud`, `--arm-endpoint/--authority-host`, `discovery from ...`,
    /// or `default`.
    pub reason: String,
}

/// The cloud from flags and the cloud config, in this order: `--arm-endpoint` (custom, with
/// `--authority-host` or `--discover`); azure.json `resourceManagerEndpoint` (discovery, Azure
/// Stack Hub); `--cloud`; azure.json `cloud`; the public cloud. `--authority-host` and
/// `--audience` override what the chosen cloud says.
pub async fn resolve(
    args: &super::AuthArgs,
    config: Option<&crate::cloud_config::CloudConfig>,
    http: &reqwest::Client,
) -> Result<CloudChoice, CloudError> {
    let authority = args
        .authority_host
        .as_deref()
        .map(|a| normalise("--authority-host", a, true))
        .transpose()?;
    let audience = args.audience.clone().filter(|a| !a.trim().is_empty());
    if let Some(raw) = &args.arm_endpoint {
        let arm = normalise("--arm-endpoint", raw, true)?;
        if args.discover {
            let d = discover(http, &arm, args.loopback_only).await?;
            return Ok(from_discovery(d, authority, audience, &arm));
        }
        let Some(authority) = authority else {
            return Err(CloudError::MissingAuthority { arm: arm.to_string() });
        };
        return Ok(CloudChoice {
            cloud: Cloud::custom(arm, authority, audience),
            reason: "--arm-endpoint and --authority-host".into(),
        });
    }
    let config_rm = config
        .and_then(|c| c.settings.resource_manager_endpoint.as_deref())
        .filter(|r| !r.trim().is_empty());
    if let Some(raw) = config_rm
        && args.cloud.is_none()
    {
        let arm = normalise("resourceManagerEndpoint", raw, true)?;
        let d = discover(http, &arm, args.loopback_only).await?;
        return Ok(from_discovery(d, authority, audience, &arm));
    }
    let (mut cloud, reason) = match (&args.cloud, config.and_then(|c| c.settings.cloud.as_deref())) {
        (Some(name), _) => (
            Cloud::by_name(name).ok_or_else(|| CloudError::UnknownCloud { name: name.clone() })?,
            "--cloud".to_string(),
        ),
        (None, Some(name)) if !name.trim().is_empty() => (
            Cloud::by_name(name).ok_or_else(|| CloudError::UnknownCloud {
                name: name.to_string(),
            })?,
            "the cloud config's cloud".to_string(),
        ),
        _ => (Cloud::public(), "default".to_string()),
    };
    let mut reason = reason;
    if let Some(a) = authority {
        cloud.authority_host = a;
        reason.push_str(", authority from --authority-host/AZURE_AUTHORITY_HOST");
    }
    if let Some(a) = audience {
        cloud.audience = a;
        reason.push_str(", audience from --audience");
    }
    Ok(CloudChoice { cloud, reason })
}

fn from_discovery(d: Discovered, authority: Option<Url>, audience: Option<String>, arm: &Url) -> CloudChoice {
    let cloud = Cloud {
        name: d.name.clone().unwrap_or_else(|| "custom".into()),
        arm_endpoint: d.arm_endpoint,
        authority_host: authority.unwrap_or(d.authority_host),
        audience: audience.or(d.audience).unwrap_or_else(|| arm.to_string()),
    };
    CloudChoice {
        cloud,
        reason: format!("discovered from {arm}metadata/endpoints"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scopes() {
        assert_eq!(
            Cloud::by_name(" azurechinacloud ").unwrap().arm_endpoint.as_str(),
            "https://management.chinacloudapi.cn/"
        );
        assert_eq!(
            Cloud::by_name("AzureUSGovernment").unwrap().name,
            "AzureUSGovernmentCloud"
        );
        assert!(Cloud::by_name("AzureStackCloud").is_none());
        assert_eq!(Cloud::public().scope(), "https://management.azure.com/.default");
        assert_eq!(
            Cloud::us_government().authority_host.as_str(),
            "https://login.microsoftonline.us/"
        );
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalise("--arm-endpoint", "https://127.0.0.1:8443", true)
                .unwrap()
                .as_str(),
            "https://127.0.0.1:8443/"
        );
        assert!(normalise("--arm-endpoint", "http://x", true).is_err());
        assert!(normalise("--arm-endpoint", "not a url", true).is_err());
        assert!(normalise("--arm-endpoint", "https://x/?a=b", true).is_err());
    }

    #[test]
    fn metadata_shapes() {
        let arm = Url::parse("https://127.0.0.1:1/").unwrap();
        let list = serde_json::json!([
            {"name":"Other","resourceManager":"https://other/","authentication":{"loginEndpoint":"https://o/","audiences":["x"]}},
            {"name":"AzureCloud","resourceManager":"https://127.0.0.1:1/","authentication":{"loginEndpoint":"https://127.0.0.1:2","audiences":["https://management.core.windows.net/"]}}
        ]);
        let d = parse_metadata(&list, &arm).unwrap();
        assert_eq!(d.authority_host.as_str(), "https://127.0.0.1:2/");
        assert_eq!(d.name.as_deref(), Some("AzureCloud"));
        assert_eq!(
            d.audience.as_deref(),
            Some("https://management.core.windows.net/")
        );
        let obj = serde_json::json!({"galleryEndpoint":"x","authentication":{"loginEndpoint":"https://login.hub/adfs","audiences":["https://management.hub/abc"]}});
        let d = parse_metadata(&obj, &arm).unwrap();
        assert_eq!(d.arm_endpoint, arm);
        assert_eq!(d.authority_host.as_str(), "https://login.hub/adfs/");
        assert!(parse_metadata(&serde_json::json!([]), &arm).is_err());
        assert!(parse_metadata(&serde_json::json!({"a":1}), &arm).is_err());
    }
}
