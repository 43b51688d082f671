//! `GET /metadata/endpoints`: ARM's cloud discovery document, pointing back at the mock.
//!
//! From api-version 2019-05-01 ARM answers a JSON array of clouds; cloud-provider-azure's
//! `OverrideAzureCloudConfigAndEnvConfigFromMetadataService` (`CPA:pkg/azclient/cloud.go`)
//! unmarshals it into `[]struct{name, resourceManager, authentication{audiences, loginEndpoint},
//! suffixes{acrLoginServer, storage}}` and picks the entry whose `name` equals the configured
//! cloud (or the first when none is configured). Older api-versions (2015-01-01, read by
//! msrestazure's `get_cloud_from_metadata_endpoint`) answer a single object with
//! `galleryEndpoint`, `graphEndpoint`, `portalEndpoint` and `authentication`.
//!
//! It must hand out no URL other than the mock's own: endpoints a real cloud would list (portal,
//! graph, batch, ...) are omitted, or point at the mock's ARM listener where a reader requires
//! the key.

use serde_json::{Value, json};

/// Token audiences ARM accepts for the public cloud (azcore's `management.core.windows.net` and
/// the Environment's `management.azure.com`, `domain.md` §7.1).
pub(crate) const AUDIENCES: &[&str] = &[
    "https://management.core.windows.net/",
    "https://management.azure.com/",
];

/// The cloud name the document advertises (public ARM's own entry is named `AzureCloud`).
pub(crate) const CLOUD_NAME: &str = "AzureCloud";

/// The document for `api_version`; `arm` and `authority` without trailing slash.
pub(crate) fn document(api_version: &str, arm: &str, authority: &str) -> Value {
    let authentication = json!({
        "loginEndpoint": authority,
        "audiences": AUDIENCES,
        "tenant": "common",
        "identityProvider": "AAD"
    });
    // api-versions are dates, so they compare as strings.
    if api_version < "2019-05-01" {
        return json!({
            "galleryEndpoint": format!("{arm}/"),
            "graphEndpoint": format!("{arm}/"),
            "portalEndpoint": format!("{arm}/"),
            "authentication": authentication
        });
    }
    json!([{
        "name": CLOUD_NAME,
        "resourceManager": format!("{arm}/"),
        "authentication": authentication,
        "suffixes": {
            "acrLoginServer": "azurecr.io",
            "keyVaultDns": "vault.azure.net",
            "storage": "core.windows.net",
            "sqlServerHostname": "database.windows.net"
        }
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_from_2019_object_before() {
        let d = document("2022-09-01", "https://127.0.0.1:1", "https://127.0.0.1:2");
        assert_eq!(d[0]["resourceManager"], "https://127.0.0.1:1/");
        assert_eq!(d[0]["authentication"]["loginEndpoint"], "https://127.0.0.1:2");
        let old = document("2015-01-01", "https://127.0.0.1:1", "https://127.0.0.1:2");
        assert!(old.is_object());
        assert_eq!(old["authentication"]["audiences"][0], AUDIENCES[0]);
    }
}
