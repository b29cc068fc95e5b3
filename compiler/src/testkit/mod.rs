//! Test support of the compiler: [`testgen`] (large valid programs for the
//! benchmarks and the tests, feature `testkit`) and `trees` (hand-made
//! syntax trees for the unit tests of risk and policy).

#[cfg(feature = "testkit")]
pub mod testgen;
#[cfg(test)]
pub(crate) mod trees;
