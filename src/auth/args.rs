//! The authentication and cloud flags (and their environment variables), shared by every
//! command that talks to Azure (`audit`, `doctor`).
//!
//! Secret values parse straight into [`Secret`] and their environment values are hidden from
//! `--help` (clap would otherwise print `[env: AZURE_CLIENT_SECRET=<value>]`). This module only
//! declares flags; validation and the choice of a credential happen in `auth`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::secret::{Secret, parse_secret};

/// The default IMDS token endpoint (domain.md §7.2). A constant only: every test overrides it
/// with `--imds-endpoint` / `AZAUDIT_IMDS_ENDPOINT`, and loopback-only mode refuses it.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// `--auth`: which credential source to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// Try, in order: environment service principal (secret, then certificate), workload
    /// identity, the cloud config's credentials (with --cloud-config), managed identity (App
    /// Service, else IMDS with a 1 s connect timeout), Azure CLI.
    #[default]
    Auto,
    /// Client id + client secret.
    ServicePrincipal,
    /// Client id + certificate (PEM or PFX).
    Certificate,
    /// IMDS (VM, VMSS, AKS node) or App Service / Functions (IDENTITY_ENDPOINT + IDENTITY_HEADER).
    ManagedIdentity,
    /// Federated token file (AKS workload identity).
    WorkloadIdentity,
    /// `az account get-access-token`.
    AzureCli,
    /// The credentials in --cloud-config (azure.json), in the cloud provider's precedence.
    CloudConfig,
}

/// Signature algorithm of certificate client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum AssertionAlg {
    /// RSASSA-PSS with SHA-256 and an `x5t#S256` header (current Entra ID documentation).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and an `x5t` (SHA-1) header, for older tenants and proxies.
    Rs256,
}

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Authentication and cloud")]
pub struct AuthArgs {
    /// Credential source.
    #[arg(long, value_enum, default_value_t = AuthMethod::Auto, env = "AZAUDIT_AUTH")]
    pub auth: AuthMethod,
    /// Entra ID tenant (directory) id.
    #[arg(long, env = "AZURE_TENANT_ID", value_name = "ID")]
    pub tenant_id: Option<String>,
    /// Application (client) id of the service principal or workload identity.
    #[arg(long, env = "AZURE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// Client secret (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "AZURE_CLIENT_SECRET", hide_env_values = true, allow_hyphen_values = true, value_parser = parse_secret, value_name = "SECRET")]
    pub client_secret: Option<Secret>,
    /// Certificate for a service principal: PEM (certificate + PKCS#8 or PKCS#1 RSA key) or PFX.
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PATH", value_name = "FILE")]
    pub client_certificate: Option<PathBuf>,
    /// Password of a PFX certificate.
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PASSWORD", hide_env_values = true, allow_hyphen_values = true, value_parser = parse_secret, value_name = "PASSWORD")]
    pub client_certificate_password: Option<Secret>,
    /// Send the certificate chain (x5c) with certificate assertions (subject name / issuer auth).
    #[arg(long, env = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value_parser = clap::builder::BoolishValueParser::new())]
    pub send_certificate_chain: bool,
    /// Signature algorithm of certificate assertions.
    #[arg(long, value_enum, default_value_t = AssertionAlg::Ps256)]
    pub assertion_alg: AssertionAlg,
    /// Workload identity: the projected service-account token (re-read for every token request).
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE", value_name = "FILE")]
    pub federated_token_file: Option<PathBuf>,
    /// User-assigned managed identity by client id.
    #[arg(long, value_name = "ID", conflicts_with_all = ["managed_identity_object_id", "managed_identity_resource_id"])]
    pub managed_identity_client_id: Option<String>,
    /// User-assigned managed identity by object (principal) id.
    #[arg(long, value_name = "ID", conflicts_with = "managed_identity_resource_id")]
    pub managed_identity_object_id: Option<String>,
    /// User-assigned managed identity by ARM resource id.
    #[arg(long, value_name = "ID")]
    pub managed_identity_resource_id: Option<String>,
    /// IMDS token endpoint (for tests and proxies; default http://169.254.169.254/metadata/identity/oauth2/token).
    #[arg(long, env = "AZAUDIT_IMDS_ENDPOINT", value_name = "URL")]
    pub imds_endpoint: Option<String>,
    /// App Service / Functions managed identity endpoint (set by the platform).
    #[arg(long, env = "IDENTITY_ENDPOINT", value_name = "URL")]
    pub identity_endpoint: Option<String>,
    /// App Service / Functions identity header (set by the platform).
    #[arg(long, env = "IDENTITY_HEADER", hide_env_values = true, allow_hyphen_values = true, value_parser = parse_secret, value_name = "VALUE")]
    pub identity_header: Option<Secret>,
    /// Azure cloud: AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// ARM endpoint of a custom cloud (with --authority-host, or --discover on Azure Stack Hub).
    #[arg(long, value_name = "URL")]
    pub arm_endpoint: Option<String>,
    /// Entra ID authority host (set by the workload identity webhook as AZURE_AUTHORITY_HOST).
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL")]
    pub authority_host: Option<String>,
    /// Token audience (default: the cloud's ARM audience).
    #[arg(long, value_name = "URL")]
    pub audience: Option<String>,
    /// Discover the authority and audience from <arm-endpoint>/metadata/endpoints (Azure Stack Hub).
    #[arg(long, requires = "arm_endpoint")]
    pub discover: bool,
    /// Extra trusted CA certificates, PEM (repeatable; SSL_CERT_FILE is also read). TLS
    /// verification cannot be turned off.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
    /// The cluster's cloud-provider config (e.g. /etc/kubernetes/azure.json): settings, and
    /// credentials for --auth cloud-config.
    #[arg(long, env = "AZAUDIT_CLOUD_CONFIG", value_name = "FILE")]
    pub cloud_config: Option<PathBuf>,
    /// The `az` executable (tests use a fake one).
    #[arg(long, env = "AZAUDIT_AZ_PATH", value_name = "FILE", hide = true)]
    pub az_path: Option<PathBuf>,
    /// Refuse to contact anything but loopback addresses (tests, CI).
    #[arg(long, env = "AZAUDIT_LOOPBACK_ONLY", hide = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub loopback_only: bool,
}
