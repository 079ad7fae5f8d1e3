//! Reference workload generator and benchmarks.
