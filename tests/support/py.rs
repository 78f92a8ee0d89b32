//! The Python side of the interop tests: the venv's interpreter and the
//! scripts in `tests/support/python/`, run as child processes.
//!
//! Python comes from `OBSERVE_TEST_PYTHON` (set by `scripts/test`, which
//! builds `target/py-venv` with `scripts/python-venv`), else
//! `target/py-venv/bin/python`. Without it a test prints a notice and
//! passes, unless `CI=true`: then it fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The venv's python, if it can import `modules` (a comma-separated
/// `import` list); `None` means skip (outside CI).
pub fn python(test: &str, modules: &str) -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let candidate = std::env::var_os("OBSERVE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python")
        });
    let ok = Command::new(&candidate)
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(candidate);
    }
    let msg = format!(
        "no Python with {modules} at {} (run scripts/python-venv, or set OBSERVE_TEST_PYTHON)",
        candidate.display()
    );
    if ci {
        panic!("CI=true: {msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    None
}

/// A script of `tests/support/python/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/python")
        .join(name)
}

/// A Python server: started with `args`, it prints `PORT <n>` once
/// listening on 127.0.0.1 and stops when its stdin closes (killed after 5 s).
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    pub fn start(python: &Path, script_name: &str, args: &[&str]) -> PyServer {
        let mut child = Command::new(python)
            .arg(script(script_name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {script_name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server says its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script_name} printed {line:?}"));
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // Closing stdin stops it cleanly (its spans are already exported).
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
