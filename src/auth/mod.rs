//! Authentication: every credential source ops teams use, in every Azure cloud (issue 3).
//! Placeholder: the credential sources land here.

pub mod cloud;

pub use cloud::Cloud;
