//! Safe cleanup (issue 7): `azaudit cleanup plan` turns an audit's cleanup-eligible findings into
//! an ordered, reviewable plan; `azaudit cleanup apply` carries it out, re-checking every action
//! live (ARM re-read, Kubernetes listed again) and writing with `If-Match`.
//!
//! Modules: `plan` (what to do and why, pure), `edit` (raw ARM JSON edits and digests, pure),
//! `render` (markdown and `az` script), `log` (the append-only apply log), `engine` (apply, over
//! an abstract estate), `live` (the estate over ARM and the clusters).
//!
//! What it must not do: delete anything the rules and the safety rails of `plan` did not
//! single out; write without `If-Match`; retry a refused write (412, lock, in use); let a plan
//! act on a resource that changed since (other than through the plan's own earlier actions).

pub mod edit;
pub mod plan;

pub use plan::{Action, ActionKind, Plan};
