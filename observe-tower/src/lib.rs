//! observe tower.
