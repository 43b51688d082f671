//! ARM throttling (placeholder until implemented).

use crate::config::ThrottleConfig;

pub struct Throttle {}

impl Throttle {
    pub fn new(_config: &ThrottleConfig) -> Throttle {
        Throttle {}
    }
    pub fn reset(&mut self) {}
}
