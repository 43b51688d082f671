//! Azure clouds: ARM endpoint, authority host and token audience (domain.md §7.5).

use url::Url;

/// Where ARM and Entra ID are, and what audience tokens are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// `AzurePublicCloud`, `AzureChinaCloud`, `AzureUSGovernmentCloud`, or `custom`.
    pub name: String,
    /// ARM base URL with a trailing slash, e.g. `https://management.azure.com/`.
    pub arm_endpoint: Url,
    /// Entra ID authority host with a trailing slash, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Token audience, e.g. `https://management.azure.com/`.
    pub audience: String,
}

impl Cloud {
    /// The `scope` for token requests: audience without trailing slash + `/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.audience.trim_end_matches('/'))
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
    }
}
