//! ijepa-dsl: the experiment language. KDL text -> typed, validated [`config::Experiment`],
//! with miette diagnostics that point at the offending text. No tch.

pub mod config;
