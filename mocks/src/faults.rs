//! Fault injection (placeholder until implemented).

#[derive(Debug, Default)]
pub struct FaultCounters {}
