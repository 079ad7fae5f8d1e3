//! Reference workload generator and benchmarks.
//!
//! [`workload`] builds DESIGN.md's reference workload deterministically: a transactions
//! table of `rows` rows and 12 columns, and its next step with 1 % of rows changed, 0.5 %
//! removed, 0.5 % added and the rows shuffled, plus the exact counts a correct diff must
//! find. The `pipeproof-gen` binary writes it to files; the criterion benches build it in
//! memory.

pub mod workload;
