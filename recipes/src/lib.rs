//! ijepa-recipes: recipe implementations (the I-JEPA reference, MAE, DINO), their registry
//! entries ([`registry::register_builtins`]), and the official-step parity checks.

pub mod dino;
pub mod ijepa;
pub mod mae;
pub mod parity;
pub mod registry;

pub use dino::{Dino, DinoSpec};
pub use ijepa::{IJepa, IJepaSpec};
pub use mae::{Mae, MaeSpec};
pub use registry::register_builtins;
