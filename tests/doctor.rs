//! `azaudit doctor` end to end against the in-process mock: a principal that can audit and
//! clean up, a reader without cleanup rights, a principal without access (403), Kubernetes
//! contexts with and without RBAC for every list the audit makes, the cloud config's problems
//! (from a file and from the cluster's Secret), human and JSON output, exit status. Every run
//! goes through the secret check of `auth_support::run`.

mod auth_support;

use std::path::Path;

use auth_support::{Ran, azaudit, cloud_flags, principal, run, s, shared};

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `azaudit -vvv doctor` as the principal `label` (client secret), against the shared mock.
fn doctor_as(home: &Path, label: &str, args: &[&str]) -> assert_cmd::Command {
    let m = shared();
    let p = principal(&m.ready, label);
    let mut c = azaudit(home);
    c.arg("-vvv").arg("doctor");
    c.args(cloud_flags(&m.ready));
    c.args(args);
    c.env("AZURE_TENANT_ID", &m.ready.tenant_id)
        .env("AZURE_CLIENT_ID", s(&p["client_id"]))
        .env("AZURE_CLIENT_SECRET", s(&p["client_secret"]));
    c
}

fn status(r: &Ran, id: &str) -> String {
    s(&r.check(id)["status"])
}

fn sub() -> String {
    shared().ready.subscription_ids[0].clone()
}

#[test]
fn contributor_can_audit_and_clean_up() {
    let m = shared();
    let h = home();
    let c = doctor_as(
        h.path(),
        "contributor",
        &[
            "--format",
            "json",
            "--kubeconfig",
            &m.ready.kubeconfig,
            "--context",
            "aks-prod",
        ],
    );
    let r = run(c, &m.ready, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["schema"], "azaudit.doctor/v1");
    assert_eq!(j["ok"], true);
    assert_eq!(j["cloud"]["arm_endpoint"], m.ready.arm_endpoint.as_str());
    assert_eq!(
        j["identity"]["object_id"],
        principal(&m.ready, "contributor")["object_id"]
    );
    assert_eq!(status(&r, "arm"), "ok");
    assert!(
        s(&r.check("arm")["message"]).contains("sees 1 subscription"),
        "{}",
        r.stdout
    );
    let sub = sub();
    assert_eq!(status(&r, &format!("subscription:{sub}:read")), "ok");
    assert_eq!(status(&r, &format!("subscription:{sub}:cleanup")), "ok");
    for what in ["services", "nodes", "endpointslices", "kube-system-pods"] {
        assert_eq!(status(&r, &format!("kubernetes:aks-prod:{what}")), "ok", "{what}");
    }
    assert!(!r.stdout.contains("\"fail\""), "{}", r.stdout);
}

#[test]
fn reader_reads_but_cannot_clean_up() {
    let m = shared();
    let h = home();
    let reader = principal(&m.ready, "reader");
    let sub = sub();
    let r = run(
        doctor_as(h.path(), "reader", &["--format", "json"]),
        &m.ready,
        &[],
    );
    assert_eq!(r.code, 0, "a read-only audit works: {}\n{}", r.stdout, r.stderr);
    assert_eq!(status(&r, &format!("subscription:{sub}:read")), "ok");
    let cleanup = r.check(&format!("subscription:{sub}:cleanup"));
    assert_eq!(cleanup["status"], "warn");
    let msg = s(&cleanup["message"]);
    assert!(
        msg.contains("Microsoft.Network/publicIPAddresses/delete"),
        "{msg}"
    );
    assert_eq!(
        s(&cleanup["fix"]),
        format!(
            "az role assignment create --assignee {} --role \"Network Contributor\" --scope /subscriptions/{sub}",
            s(&reader["object_id"])
        )
    );

    // A run that will clean up needs those rights.
    let r = run(
        doctor_as(h.path(), "reader", &["--format", "json", "--require-cleanup"]),
        &m.ready,
        &[],
    );
    assert_eq!(r.code, 3);
    assert_eq!(status(&r, &format!("subscription:{sub}:cleanup")), "fail");

    // The human output says the same, with the fix on its own line.
    let r = run(doctor_as(h.path(), "reader", &[]), &m.ready, &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains(&format!("Subscription {sub}")), "{}", r.stdout);
    assert!(r.stdout.contains("warn  cleanup: not possible"), "{}", r.stdout);
    assert!(
        r.stdout.contains("fix: az role assignment create --assignee"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Result: ready to audit"), "{}", r.stdout);
}

#[test]
fn principal_without_access_gets_the_reader_fix() {
    let m = shared();
    let h = home();
    let na = principal(&m.ready, "no-access");
    let sub = sub();
    let reader_fix = format!(
        "az role assignment create --assignee {} --role Reader --scope /subscriptions/{sub}",
        s(&na["object_id"])
    );
    let r = run(
        doctor_as(
            h.path(),
            "no-access",
            &["--format", "json", "--subscription", &sub],
        ),
        &m.ready,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stdout);
    let read = r.check(&format!("subscription:{sub}:read"));
    assert_eq!(read["status"], "fail");
    let msg = s(&read["message"]);
    assert!(
        msg.contains("HTTP 403") && msg.contains("AuthorizationFailed"),
        "{msg}"
    );
    assert_eq!(s(&read["fix"]), reader_fix);

    // Without --subscription: it sees none, and doctor says how to grant one.
    let r = run(
        doctor_as(h.path(), "no-access", &["--format", "json"]),
        &m.ready,
        &[],
    );
    assert_eq!(r.code, 3);
    let c = r.check("subscriptions");
    assert_eq!(c["status"], "fail");
    assert!(s(&c["message"]).contains("sees no subscription"), "{c}");
    assert!(s(&c["fix"]).contains("--role Reader"), "{c}");

    // Human output: the failure, the fix, and the exit status named.
    let r = run(
        doctor_as(h.path(), "no-access", &["--subscription", &sub]),
        &m.ready,
        &[],
    );
    assert_eq!(r.code, 3);
    assert!(r.stdout.contains("FAIL  read: ARM refuses"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("fix: {reader_fix}")), "{}", r.stdout);
    assert!(r.stdout.contains("exit status 3"), "{}", r.stdout);
}

#[test]
fn kubernetes_access_is_checked_per_context() {
    let m = shared();
    let h = home();
    let c = doctor_as(
        h.path(),
        "contributor",
        &[
            "--format",
            "json",
            "--kubeconfig",
            &m.ready.kubeconfig,
            "--all-contexts",
        ],
    );
    let r = run(c, &m.ready, &[]);
    // aks-dev forbids listing pods (mocks/tests/worlds/basic/k8s/aks-dev/mock.json).
    assert_eq!(r.code, 3, "{}", r.stdout);
    for what in ["services", "nodes", "endpointslices"] {
        assert_eq!(status(&r, &format!("kubernetes:aks-dev:{what}")), "ok");
    }
    let pods = r.check("kubernetes:aks-dev:kube-system-pods");
    assert_eq!(pods["status"], "fail");
    assert!(s(&pods["message"]).contains("forbidden"), "{pods}");
    assert!(
        s(&pods["fix"]).contains("kubectl create clusterrole azaudit-reader"),
        "{pods}"
    );
    assert!(
        s(&pods["fix"]).contains("kubectl auth can-i list pods -n kube-system"),
        "{pods}"
    );
    assert_eq!(status(&r, "kubernetes:aks-prod:kube-system-pods"), "ok");

    // A context that is not in the kubeconfig.
    let c = doctor_as(
        h.path(),
        "contributor",
        &[
            "--format",
            "json",
            "--kubeconfig",
            &m.ready.kubeconfig,
            "--context",
            "nope",
        ],
    );
    let r = run(c, &m.ready, &[]);
    assert_eq!(r.code, 3);
    assert!(
        s(&r.check("kubernetes:nope:connect")["message"]).contains("not in"),
        "{}",
        r.stdout
    );
}

#[test]
fn cloud_config_problems_are_reported_and_its_subscription_is_used() {
    let m = shared();
    let h = home();
    let cfg = h.path().join("azure.json");
    std::fs::write(
        &cfg,
        serde_json::json!({
            "cloud": "AzurePublicCloud",
            "subscriptionID": sub(),
            "resourceGroup": "MC_rg-prod_aks-prod_westeurope",
            "useInstanceMetadata": "true",
            "loadBalancerSku": "premium",
            "securityGroupNmae": "nsg",
        })
        .to_string(),
    )
    .unwrap();
    let c = doctor_as(
        h.path(),
        "reader",
        &["--format", "json", "--cloud-config", &cfg.display().to_string()],
    );
    let r = run(c, &m.ready, &[]);
    let wrong_type = r.check("cloud-config:$.useInstanceMetadata");
    assert_eq!(wrong_type["status"], "warn");
    assert!(
        s(&wrong_type["message"]).contains("the provider would refuse this"),
        "{wrong_type}"
    );
    assert!(s(&r.check("cloud-config:$.loadBalancerSku")["message"]).contains("premium"));
    assert!(
        s(&r.check("cloud-config:$.securityGroupNmae")["message"])
            .contains("did you mean \"securityGroupName\"")
    );
    // subscriptionId from the config (spelled subscriptionID) picks the subscription to check.
    assert_eq!(status(&r, &format!("subscription:{}:read", sub())), "ok");

    // From the cluster: the kube-system/azure-cloud-provider Secret of each context (aks-prod's
    // is made from its azure.json, aks-dev's is a Secret object in the world).
    for ctx in ["aks-prod", "aks-dev"] {
        let c = doctor_as(
            h.path(),
            "reader",
            &[
                "--format",
                "json",
                "--kubeconfig",
                &m.ready.kubeconfig,
                "--context",
                ctx,
                "--cloud-config-from-cluster",
            ],
        );
        let r = run(c, &m.ready, &[]);
        let cc = r.check("cloud-config");
        assert_eq!(cc["status"], "ok", "{}", r.stdout);
        assert_eq!(
            s(&cc["section"]),
            format!("Cloud config (Secret kube-system/azure-cloud-provider (context {ctx}))")
        );
        // Its subscriptionId is the one checked.
        assert_eq!(status(&r, &format!("subscription:{}:read", sub())), "ok");
    }
}

#[test]
fn a_missing_cloud_config_file_fails_with_the_path() {
    let m = shared();
    let h = home();
    let missing = h.path().join("azure.json");
    let c = doctor_as(
        h.path(),
        "reader",
        &[
            "--format",
            "json",
            "--cloud-config",
            &missing.display().to_string(),
        ],
    );
    let r = run(c, &m.ready, &[]);
    assert_eq!(r.code, 3);
    let cc = r.check("cloud-config");
    assert_eq!(cc["status"], "fail");
    assert!(s(&cc["message"]).contains(&missing.display().to_string()), "{cc}");
    assert!(s(&cc["message"]).contains("/etc/kubernetes/azure.json"), "{cc}");
}
