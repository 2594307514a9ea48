//! Runs: which checks run ([`select`]), a target brought up per check and
//! the typed results streamed to reporters ([`run`]), and generated cuts
//! that shrink to the smallest failing one ([`generated`]).

pub mod generated;
pub mod run;
pub mod select;
