//! The grades domain: validated value types (term, exam kind, credit, score), grade records,
//! grade-point scales (built-in `standard4` or a department's own from the config) and the
//! transcript rules of SPEC.md (term GPA, overall GPA, credits earned, passed/failed) and the
//! credit-weighted average score.
//!
//! Everything numeric is kept in exact hundredths (`u32`/`u64`) so GPAs and credit sums are exact;
//! only display rounds (half away from zero, two decimals).
//!
//! A leaf: imports nothing from the crate. `values` holds the validated value types and records,
//! `scale` the grade-point scales, `transcript` the GPA and credit rules, `average` the
//! 加权平均分, `compulsory` the 必修-only GPA.

mod average;
mod compulsory;
mod scale;
mod transcript;
mod values;

pub use average::*;
pub use compulsory::*;
pub use scale::*;
pub use transcript::*;
pub use values::*;

#[cfg(test)]
mod tests;
