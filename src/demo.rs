//! `azaudit demo`: the embedded demo world, served by the mock on loopback, audited over HTTPS
//! through the same code path as a live audit (placeholder until live collection lands).

use crate::audit::Exit;
use crate::cli::{ColorChoice, ReportArgs};

pub fn run(_args: &ReportArgs, _color: ColorChoice) -> anyhow::Result<Exit> {
    anyhow::bail!("the demo arrives with live collection")
}
