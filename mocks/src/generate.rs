//! World generator (placeholder until implemented).
