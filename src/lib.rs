//! azaudit: audits what Kubernetes' Azure cloud provider creates, leaks and drifts.
//!
//! Layers (ARCHITECTURE.md): `inventory` (what we saw), `checks` (what we conclude), `report` (how we
//! say it) are pure and never `use` the I/O modules (`arm`, `kube`, `auth`); `collect` and
//! `snapshot` are the only places that turn I/O into an [`inventory::Inventory`].

pub mod arm;
pub mod audit;
pub mod auth;
pub mod checks;
pub mod cleanup;
pub mod cli;
pub mod cloud_config;
pub mod collect;
pub mod config;
pub mod conventions;
pub mod demo;
pub mod doctor;
pub mod findings;
pub mod http;
pub mod inventory;
pub mod inventory_cmd;
pub mod kube;
pub mod limits;
pub mod live;
pub mod nsg;
pub mod report;
pub mod rules_doc;
pub mod secret;
pub mod snapshot;
pub mod state;
