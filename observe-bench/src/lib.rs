//! observe's criterion benchmarks live in `benches/`, one scenario per
//! file, each measured against its peers in the same run; this library is
//! empty. Run one with `cargo bench -p observe-bench --bench <name>`
//! (`log_line`, `http_layer`, `grpc_layer`, `observed`, `export`, `tail_sampling`);
//! `docs/performance.md` has the current table of each.
#![forbid(unsafe_code)]
