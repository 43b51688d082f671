//! Starting and stopping the mock: listeners (loopback only), TLS, the ready file.
//!
//! Listeners, all on the loopback address given by `--listen`:
//! - ARM + `/_mock/*` admin (HTTPS, the `--listen` port),
//! - Entra ID, the authority host (HTTPS),
//! - managed identity: IMDS and App Service style (plain HTTP, as the real ones are),
//! - one Kubernetes API server per cluster in `k8s/` (HTTPS).
//!
//! The ARM listener also answers on 127.0.0.2 (the "foreign host" of the foreign-nextLink fault)
//! when `--listen` is 127.0.0.1, so a client that wrongly follows such a link still only reaches
//! loopback, and the leak is counted.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context, bail};
use axum::Router;
use azaudit_world::World;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::MockConfig;
use crate::state::{Endpoints, MockState, Stats};

/// What a caller needs to start the mock.
pub struct ServeOptions {
    pub world: World,
    /// Loopback address and port for ARM; the other listeners take free ports on the same address.
    pub listen: SocketAddr,
    /// Where to write the CA, certificates, token file and kubeconfig.
    pub files_dir: PathBuf,
    /// Overrides `world.json`'s `mock` section when given.
    pub config: Option<MockConfig>,
}

/// The ready file: everything a client needs to talk to the mock.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ReadyInfo {
    pub arm_endpoint: String,
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// PEM with the certificate and its private key (as `AZURE_CLIENT_CERTIFICATE_PATH` expects).
    pub client_certificate: String,
    pub imds_endpoint: String,
    pub identity_endpoint: String,
    pub identity_header: String,
    pub federated_token_file: String,
    pub ca_file: String,
    pub kubeconfig: String,
    pub subscription_ids: Vec<String>,
    pub admin_endpoint: String,
    /// Per cluster, its API server URL.
    pub k8s_endpoints: BTreeMap<String, String>,
    /// Extra detail from the identity module (other principals, managed identities, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A running mock. Drop it or call [`RunningMock::shutdown`] to stop it.
pub struct RunningMock {
    pub ready: ReadyInfo,
    pub state: Arc<MockState>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningMock {
    /// Stops every listener and open connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.stats.lock().expect("stats lock").clone()
    }
}

fn ensure_loopback(ip: IpAddr) -> anyhow::Result<()> {
    if !ip.is_loopback() {
        bail!("refusing to listen on {ip}: the mock only binds loopback addresses (127.0.0.0/8, ::1)");
    }
    Ok(())
}

/// Starts the mock and returns once every listener is bound.
pub async fn start(opts: ServeOptions) -> anyhow::Result<RunningMock> {
    ensure_loopback(opts.listen.ip())?;
    let config = match opts.config {
        Some(c) => c,
        None => MockConfig::from_world_meta(opts.world.meta.mock.as_ref()).map_err(anyhow::Error::msg)?,
    };
    std::fs::create_dir_all(&opts.files_dir)
        .with_context(|| format!("create {}", opts.files_dir.display()))?;
    let tenant_id = opts
        .world
        .meta
        .tenant_id
        .clone()
        .unwrap_or_else(|| "72f988bf-0000-0000-0000-000000000000".to_string());

    let pki = crate::tls::generate()?;
    let ca_file = opts.files_dir.join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).context("write CA")?;
    let acceptor = TlsAcceptor::from(pki.server_config.clone());

    let mut identity = crate::identity::setup_for_world(
        &config,
        &tenant_id,
        &opts.files_dir,
        &opts.world.subscription_ids(),
    )?;
    let clusters: Vec<String> = opts.world.clusters.keys().cloned().collect();
    let k8s_tokens: BTreeMap<String, String> = clusters
        .iter()
        .map(|c| (c.clone(), crate::k8s::new_token()))
        .collect();
    let subscription_ids = opts.world.subscription_ids();

    let state = Arc::new(MockState {
        rng: MockState::new_rng(config.seed),
        throttle: Mutex::new(crate::throttle::Throttle::new(&config.throttle)),
        faults: Mutex::new(Default::default()),
        operations: Mutex::new(Default::default()),
        config,
        tenant_id: tenant_id.clone(),
        world: RwLock::new(opts.world),
        principals: identity.principals,
        signer: crate::tokens::TokenSigner::new(),
        stats: Mutex::new(Stats::default()),
        endpoints: RwLock::new(Endpoints::default()),
        k8s_tokens,
        identity: identity.state,
    });

    let ip = opts.listen.ip();
    let (tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let arm_listener = bind(SocketAddr::new(ip, opts.listen.port())).await?;
    let arm_port = arm_listener.local_addr()?.port();
    let auth_listener = bind(SocketAddr::new(ip, 0)).await?;
    let msi_listener = bind(SocketAddr::new(ip, 0)).await?;
    let host = url_host(ip);
    let mut endpoints = Endpoints {
        arm: format!("https://{host}:{arm_port}"),
        authority: format!("https://{host}:{}", auth_listener.local_addr()?.port()),
        msi: format!("http://{host}:{}", msi_listener.local_addr()?.port()),
        foreign: String::new(),
        k8s: BTreeMap::new(),
    };
    let arm_router = crate::arm::router(state.clone());
    // The foreign host: the same ARM service on 127.0.0.2, when the main address is 127.0.0.1.
    if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        let foreign_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        if let Ok(l) = bind(SocketAddr::new(foreign_ip, arm_port)).await {
            endpoints.foreign = format!("https://127.0.0.2:{arm_port}");
            tasks.spawn(accept_loop(
                l,
                Some(acceptor.clone()),
                arm_router.clone(),
                rx.clone(),
            ));
        }
    }
    if endpoints.foreign.is_empty() {
        // Another port on the same address still is another authority for a host guard.
        let l = bind(SocketAddr::new(ip, 0)).await?;
        endpoints.foreign = format!("https://{host}:{}", l.local_addr()?.port());
        tasks.spawn(accept_loop(
            l,
            Some(acceptor.clone()),
            arm_router.clone(),
            rx.clone(),
        ));
    }
    tasks.spawn(accept_loop(
        arm_listener,
        Some(acceptor.clone()),
        arm_router,
        rx.clone(),
    ));
    tasks.spawn(accept_loop(
        auth_listener,
        Some(acceptor.clone()),
        crate::identity::authority_router(state.clone()),
        rx.clone(),
    ));
    tasks.spawn(accept_loop(
        msi_listener,
        None,
        crate::identity::msi_router(state.clone()),
        rx.clone(),
    ));
    for cluster in &clusters {
        let l = bind(SocketAddr::new(ip, 0)).await?;
        endpoints.k8s.insert(
            cluster.clone(),
            format!("https://{host}:{}", l.local_addr()?.port()),
        );
        tasks.spawn(accept_loop(
            l,
            Some(acceptor.clone()),
            crate::k8s::router(state.clone(), cluster.clone()),
            rx.clone(),
        ));
    }
    *state.endpoints.write().expect("endpoints lock") = endpoints.clone();
    // The federated token names the authority URL as its issuer, known only now.
    crate::identity::after_bind(&state, &mut identity.files)?;

    let kubeconfig = opts.files_dir.join("kubeconfig");
    crate::k8s::write_kubeconfig(&kubeconfig, &endpoints.k8s, &state.k8s_tokens, &pki.ca_pem)?;

    let ready = ReadyInfo {
        arm_endpoint: format!("{}/", endpoints.arm),
        authority_host: format!("{}/", endpoints.authority),
        tenant_id,
        client_id: identity.files.client_id,
        client_secret: identity.files.client_secret,
        client_certificate: path_string(&identity.files.client_certificate),
        imds_endpoint: format!("{}/metadata/identity/oauth2/token", endpoints.msi),
        identity_endpoint: format!("{}/msi/token", endpoints.msi),
        identity_header: identity.files.identity_header,
        federated_token_file: path_string(&identity.files.federated_token_file),
        ca_file: path_string(&ca_file),
        kubeconfig: path_string(&kubeconfig),
        subscription_ids,
        admin_endpoint: format!("{}/_mock", endpoints.arm),
        k8s_endpoints: endpoints.k8s.clone(),
        extra: identity.files.extra,
    };
    Ok(RunningMock {
        ready,
        state,
        shutdown: tx,
        tasks,
    })
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    ensure_loopback(addr.ip())?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                // Without TCP_NODELAY a response's last small segment waits for the client's
                // delayed ACK (40 ms on Linux): every multi-segment page would cost 40 ms more
                // than `latency_ms`, and benchmarks would measure Nagle, not the client.
                let _ = tcp.set_nodelay(true);
                let tls = tls.clone();
                let svc = TowerToHyperService::new(router.clone());
                conns.spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else { return };
                            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).await;
                        }
                        None => {
                            let _ = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc).await;
                        }
                    }
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        }
    }
    conns.abort_all();
}
