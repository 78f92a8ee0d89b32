//! observe macros.
