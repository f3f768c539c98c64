//! Evaluation: metrics (defined once), the seeds' protocol (base models and stacks) and
//! its reports.

pub mod full;
pub mod metrics;
pub mod protocol;
pub mod report;

pub use protocol::{evaluate_seed_protocol, EvalConfig, EvalReport, ModelResult};
