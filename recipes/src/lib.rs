//! ijepa-recipes: recipe implementations (the I-JEPA reference, MAE), their registry
//! entries ([`registry::register_builtins`]), and the official-step parity checks.

pub mod ijepa;
pub mod mae;
pub mod parity;
pub mod registry;

pub use ijepa::{IJepa, IJepaSpec};
pub use mae::{Mae, MaeSpec};
pub use registry::register_builtins;
