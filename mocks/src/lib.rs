//! azaudit's mock world: a fake Azure Resource Manager, Entra ID token endpoint, managed
//! identity endpoints and Kubernetes API servers, over real HTTPS on loopback, serving a world
//! directory (`docs/world-format.md` in shared/).
//!
//! It exists so that azaudit is built and tested against the protocols it meets in production
//! without ever contacting a cloud: it refuses to bind anything but loopback, and every URL it
//! hands out points back at itself.

pub mod arm;
pub mod config;
pub mod demo;
pub mod faults;
pub mod generate;
pub mod identity;
pub mod k8s;
pub mod server;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod tokens;

pub use server::{ReadyInfo, RunningMock, ServeOptions, start};
