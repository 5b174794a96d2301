//! Tests of the GitHub simulator.
