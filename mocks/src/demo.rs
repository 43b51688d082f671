//! The hand-written demo world (`mocks/worlds/demo/`, see its README), embedded at build time.

use std::path::PathBuf;

use azaudit_world::World;

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// The demo world, loaded from the embedded files.
pub fn world() -> World {
    World::from_files(
        DEMO_FILES
            .iter()
            .map(|(p, b)| (PathBuf::from(p), b.to_vec()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_demo_world_loads_cleanly() {
        let w = super::world();
        assert!(w.problems.is_empty(), "{:?}", w.problems);
        assert_eq!(w.clusters.len(), 2);
        assert!(w.resources.len() > 50);
    }
}
