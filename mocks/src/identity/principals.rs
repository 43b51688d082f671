//! The principals every mock registers, and the ready-file description of them.
//!
//! Client and object ids are GUID-shaped and derived from the tenant and the label, so a test
//! world gives the same ids on every start; secrets are random on every start, so a test can
//! grep logs and reports for them and be sure they came from this run.
//!
//! This module only builds values; it must not write files or serve requests.

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::{Principal, PrincipalKind, RegisteredCert};

pub const CONTRIBUTOR: &str = "contributor";
pub const READER: &str = "reader";
pub const NO_ACCESS: &str = "no-access";
pub const EXPIRED_CERT: &str = "expired-cert";
pub const WORKLOAD: &str = "workload";
pub const SYSTEM_ASSIGNED: &str = "system-assigned";
pub const USER_ASSIGNED: &str = "user-assigned";

/// The subject of the federated credential registered on `workload`: the service account
/// azaudit runs as in-cluster (`system:serviceaccount:<namespace>:<name>`, the form the AKS
/// OIDC issuer puts in `sub`).
pub const WORKLOAD_SUBJECT: &str = "system:serviceaccount:azaudit:azaudit";
/// The audience Entra ID requires in federated assertions ("api://AzureADTokenExchange",
/// https://learn.microsoft.com/entra/workload-id/workload-identity-federation).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The subscription used in the user-assigned identity's resource id when the world has none.
pub const NIL_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

/// A GUID-shaped id (version 4 and RFC 4122 variant bits set) derived from `seed`.
pub fn derived_guid(seed: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(seed.as_bytes())[..16]
        .try_into()
        .expect("SHA-256 is longer than 16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random GUID (trace and correlation ids, the App Service identity header).
pub fn random_guid() -> String {
    let seed: [u8; 16] = rand::rngs::OsRng.r#gen();
    derived_guid(&base64::engine::general_purpose::STANDARD.encode(seed))
}

/// A random client secret shaped like the ones Entra ID generates today: 40 characters,
/// three random ones, a `8Q~`-style marker, then random characters from the secret alphabet.
pub fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~";
    let mut rng = rand::rngs::OsRng;
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect()
    };
    format!("{}8Q~{}", pick(3), pick(34))
}

/// The user-assigned identity's ARM resource id.
pub fn user_assigned_resource_id(subscription_ids: &[String]) -> String {
    let sub = subscription_ids
        .first()
        .map(String::as_str)
        .unwrap_or(NIL_SUBSCRIPTION);
    format!(
        "/subscriptions/{sub}/resourceGroups/identity-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/azaudit-mi"
    )
}

/// Certificates registered on the built-in principals.
pub struct BuiltinCerts {
    pub contributor: RegisteredCert,
    pub expired: RegisteredCert,
}

/// The built-in principals, with fresh secrets.
pub fn builtin(tenant_id: &str, subscription_ids: &[String], certs: BuiltinCerts) -> Vec<Principal> {
    let all = || vec!["*".to_string()];
    let read = || vec!["*/read".to_string()];
    let sp = |label: &str| Principal {
        label: label.to_string(),
        kind: PrincipalKind::ServicePrincipal,
        client_id: derived_guid(&format!("azaudit-mock/{tenant_id}/{label}/client")),
        object_id: derived_guid(&format!("azaudit-mock/{tenant_id}/{label}/object")),
        client_secret: Some(random_secret()),
        certificate: None,
        federated: false,
        subscriptions: all(),
        actions: read(),
        not_actions: Vec::new(),
    };
    let contributor = Principal {
        certificate: Some(certs.contributor),
        actions: all(),
        ..sp(CONTRIBUTOR)
    };
    let reader = sp(READER);
    let no_access = Principal {
        subscriptions: Vec::new(),
        actions: Vec::new(),
        ..sp(NO_ACCESS)
    };
    let expired = Principal {
        client_secret: None,
        certificate: Some(certs.expired),
        ..sp(EXPIRED_CERT)
    };
    let workload = Principal {
        client_secret: None,
        federated: true,
        ..sp(WORKLOAD)
    };
    let system_assigned = Principal {
        kind: PrincipalKind::SystemAssigned,
        client_secret: None,
        ..sp(SYSTEM_ASSIGNED)
    };
    let user_assigned = Principal {
        kind: PrincipalKind::UserAssigned {
            resource_id: user_assigned_resource_id(subscription_ids),
        },
        client_secret: None,
        ..sp(USER_ASSIGNED)
    };
    vec![
        contributor,
        reader,
        no_access,
        expired,
        workload,
        system_assigned,
        user_assigned,
    ]
}

/// `service_principal`, `system_assigned` or `user_assigned`.
pub fn kind_name(kind: &PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::ServicePrincipal => "service_principal",
        PrincipalKind::SystemAssigned => "system_assigned",
        PrincipalKind::UserAssigned { .. } => "user_assigned",
    }
}

/// One entry of the ready file's `principals` list. `certificate_path` is the PEM written for
/// the principal's certificate, if any.
pub fn describe(p: &Principal, certificate_path: Option<&str>) -> Value {
    let mut v = json!({
        "label": p.label,
        "kind": kind_name(&p.kind),
        "client_id": p.client_id,
        "object_id": p.object_id,
        "subscriptions": p.subscriptions,
        "actions": p.actions,
    });
    if let Some(s) = &p.client_secret {
        v["client_secret"] = json!(s);
    }
    if let Some(c) = certificate_path {
        v["client_certificate"] = json!(c);
    }
    if p.federated {
        v["federated_subject"] = json!(WORKLOAD_SUBJECT);
    }
    if let PrincipalKind::UserAssigned { resource_id } = &p.kind {
        v["resource_id"] = json!(resource_id);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stable_and_shaped() {
        let a = derived_guid("x");
        assert_eq!(a, derived_guid("x"));
        assert_ne!(a, derived_guid("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(random_guid(), random_guid());
        let s = random_secret();
        assert_eq!(s.len(), 40);
        assert_eq!(&s[3..6], "8Q~");
        assert_ne!(s, random_secret());
        assert!(
            user_assigned_resource_id(&[])
                .starts_with("/subscriptions/00000000-0000-0000-0000-000000000000/")
        );
        assert!(
            user_assigned_resource_id(&["s1".into()])
                .starts_with("/subscriptions/s1/resourceGroups/identity-rg/")
        );
    }
}
