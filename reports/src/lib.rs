//! ijepa-reports: turns run folders (`runs/<experiment>/<stage>-<hash>/`) into paper-style
//! tables, plots and a report, without libtorch.
//!
//! - [`load_registry`] reads manifests, `metrics.csv`, `config.json` and `eval.json` files;
//! - [`linear_table`], [`lowshot_table`] and [`ablation_table`] lay our results out like the
//!   I-JEPA paper's Tables 1, 2 and 8-10 (Assran et al., CVPR 2023), with the paper's
//!   ImageNet-1k rows ([`paper_table`]) for reference;
//! - [`figures`] draws the loss, schedules, monitors, probe curves and sweep trends with
//!   plotters ([`plot`]);
//! - [`write_report`] writes `report.md`, a self-contained `report.html` (figures as inline SVG),
//!   `tables/*.csv` and `plots/*.svg` + `plots/*.png`.

pub mod error;
pub mod figures;
pub mod plot;
pub mod registry;
pub mod report;
pub mod tables;

pub use error::{ReportError, Result};

/// The report folder when none is given (`ijepa run --reports-dir`, `ijepa report --out`,
/// `ijepa-report --out`).
pub const DEFAULT_OUT: &str = "reports-out";
pub use polars::prelude::DataFrame;
pub use registry::{
    load_registry, load_registry_for, CurvePoint, EvalRecord, EvalRun, Manifest, MetricRow, PretrainRun, Registry,
    SweepPoint,
};
pub use report::{check_out, claim_out, render_markdown, write_report, ReportFiles};
pub use tables::{
    ablation_table, finetune_table, knn_table, linear_table, lowshot_table, paper_table, pretrain_table, seeds_table, to_csv, warnings_table,
    to_markdown,
};
