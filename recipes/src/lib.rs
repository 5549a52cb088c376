//! ijepa-recipes: recipe implementations (the I-JEPA reference first) and their registry,
//! plus the official-step parity check.

pub mod ijepa;
pub mod mae;
pub mod parity;

pub use ijepa::{IJepa, IJepaSpec};

/// Names of the recipes this build knows.
pub const RECIPES: &[&str] = &["ijepa"];
