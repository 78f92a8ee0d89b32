//! Where JSON lines go.
//!
//! ```text
//!  request thread ──line──▶ LineSink::write_line ──▶ [bounded buffer] ──▶ writer thread ──▶ stdout / file
//!                              (one mutex append)       (drop + count        (write_all, flush)
//!                                                         when full)
//! ```
//!
//! `write_line` is called on the thread that logged, possibly inside a request:
//! it must not block (unless the user chose [`FullPolicy::Block`]) and makes at
//! most one futex wake, when the buffer goes from empty to non-empty.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A destination for complete JSON lines (each ends with `\n`).
///
/// Called from any thread that logs, possibly on a request's hot path: an
/// implementation must be cheap and must not interleave two lines.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one line. Never blocks for long; failures are counted, not returned.
    fn write_line(&self, line: &[u8]);
    /// Writes one line given as two consecutive parts (`head` then `tail`,
    /// which ends with `\n`), without interleaving with other lines.
    fn write_parts(&self, head: &[u8], tail: &[u8]) {
        let mut line = Vec::with_capacity(head.len() + tail.len());
        line.extend_from_slice(head);
        line.extend_from_slice(tail);
        self.write_line(&line);
    }
    /// Waits until every line accepted so far is written, or `timeout` passes.
    /// Returns `false` on timeout.
    fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        true
    }
    /// Lines dropped so far because the buffer was full or writing failed.
    fn dropped(&self) -> u64 {
        0
    }
}

/// What a full log buffer does with a new line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FullPolicy {
    /// Drop the line and count it in `observe.logs.dropped{reason="queue_full"}` (default):
    /// a slow or blocked stdout never slows a request.
    #[default]
    DropNewest,
    /// Wait for room: no line is lost, but a blocked stdout blocks the logging thread.
    Block,
}

struct State {
    buf: Vec<u8>,
    /// Bytes handed to the writer thread and not yet written.
    in_flight: bool,
    closed: bool,
    /// The writer thread sleeps until told (no line for a while): the next
    /// line must wake it. While it lingers between batches it is not
    /// sleeping, and lines are appended without a wake-up (a futex syscall).
    idle: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled when `buf` becomes non-empty or on close.
    has_data: Condvar,
    /// Signalled when the writer thread finished a batch.
    drained: Condvar,
    capacity: usize,
    policy: FullPolicy,
    dropped: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a writer panicked mid-append; the buffer is
        // still a valid Vec, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded, non-blocking line writer over any `io::Write`, drained by its own thread.
///
/// Lines never interleave. When the buffer holds `capacity` bytes, new lines are
/// dropped and counted (or the caller waits, with [`FullPolicy::Block`]).
pub struct NonBlocking {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlocking")
            .field("capacity", &self.inner.capacity)
            .field("policy", &self.inner.policy)
            .field("dropped", &self.inner.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl NonBlocking {
    /// Starts the writer thread over `out`, buffering at most `capacity` bytes.
    pub fn new<W: Write + Send + 'static>(
        out: W,
        capacity: usize,
        policy: FullPolicy,
    ) -> io::Result<Self> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                buf: Vec::with_capacity(capacity.min(1 << 20)),
                in_flight: false,
                closed: false,
                idle: false,
            }),
            has_data: Condvar::new(),
            drained: Condvar::new(),
            capacity: capacity.max(1024),
            policy,
            dropped: AtomicU64::new(0),
        });
        let worker = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("observe-log-writer".into())
            .spawn(move || run_writer(worker, out))?;
        Ok(NonBlocking {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops accepting lines, writes what is buffered and joins the thread.
    pub fn close(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        {
            let mut st = self.inner.lock();
            st.closed = true;
        }
        self.inner.has_data.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if flushed {
                let _ = h.join();
            }
        }
        flushed
    }
}

/// How long the writer thread waits for more lines after a batch before it
/// sleeps until the next one wakes it. Lines written meanwhile cost their
/// caller no wake-up; a line never waits longer than this to be written.
const LINGER: Duration = Duration::from_millis(2);

fn run_writer<W: Write>(inner: Arc<Inner>, mut out: W) {
    let mut spare: Vec<u8> = Vec::new();
    loop {
        {
            let mut st = inner.lock();
            if st.buf.is_empty() && !st.closed {
                // Linger: lines arriving now need no wake-up.
                st = inner
                    .has_data
                    .wait_timeout(st, LINGER)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            while st.buf.is_empty() && !st.closed {
                st.idle = true;
                st = inner.has_data.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.idle = false;
            if st.buf.is_empty() && st.closed {
                st.in_flight = false;
                inner.drained.notify_all();
                return;
            }
            std::mem::swap(&mut st.buf, &mut spare);
            st.in_flight = true;
        }
        if out.write_all(&spare).and_then(|()| out.flush()).is_err() {
            let lines = spare.iter().filter(|&&b| b == b'\n').count() as u64;
            inner.dropped.fetch_add(lines, Ordering::Relaxed);
        }
        spare.clear();
        if spare.capacity() > inner.capacity.max(1 << 16) * 2 {
            spare.shrink_to(inner.capacity);
        }
        let mut st = inner.lock();
        st.in_flight = false;
        inner.drained.notify_all();
        drop(st);
    }
}

impl LineSink for NonBlocking {
    #[inline]
    fn write_line(&self, line: &[u8]) {
        self.write_parts(line, &[]);
    }

    #[inline]
    fn write_parts(&self, head: &[u8], tail: &[u8]) {
        let len = head.len() + tail.len();
        let mut st = self.inner.lock();
        if st.closed {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if st.buf.len() + len > self.inner.capacity {
            match self.inner.policy {
                FullPolicy::DropNewest => {
                    drop(st);
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                FullPolicy::Block => {
                    while st.buf.len() + len > self.inner.capacity
                        && !st.buf.is_empty()
                        && !st.closed
                    {
                        st = self
                            .inner
                            .drained
                            .wait(st)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                }
            }
        }
        st.buf.extend_from_slice(head);
        st.buf.extend_from_slice(tail);
        // Only a sleeping writer needs waking (one syscall per burst, not per line).
        let wake = std::mem::replace(&mut st.idle, false);
        drop(st);
        if wake {
            self.inner.has_data.notify_one();
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.inner.lock();
        while !st.buf.is_empty() || st.in_flight {
            if st.closed && !st.in_flight && st.buf.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.inner.has_data.notify_one();
            let (g, _) = self
                .inner
                .drained
                .wait_timeout(st, (deadline - now).min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner());
            st = g;
        }
        true
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        self.close(Duration::from_secs(2));
    }
}

/// Lines written synchronously into any `io::Write` under a mutex (for
/// benchmarks and custom destinations; prefer [`NonBlocking`] for stdout).
pub struct SyncWriter<W> {
    out: Mutex<W>,
    dropped: AtomicU64,
}

impl<W> fmt::Debug for SyncWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncWriter").finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> SyncWriter<W> {
    /// Wraps `out`.
    pub fn new(out: W) -> Self {
        SyncWriter {
            out: Mutex::new(out),
            dropped: AtomicU64::new(0),
        }
    }
}

impl<W: Write + Send + 'static> LineSink for SyncWriter<W> {
    #[inline]
    fn write_line(&self, line: &[u8]) {
        self.write_parts(line, &[]);
    }

    #[inline]
    fn write_parts(&self, head: &[u8], tail: &[u8]) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out
            .write_all(head)
            .and_then(|()| out.write_all(tail))
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self, _timeout: Duration) -> bool {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.flush().is_ok()
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Collects lines in memory (what the test harness, feature `testing`, reads back).
#[derive(Clone, Default)]
pub struct MemorySink {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink").finish_non_exhaustive()
    }
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything written so far, as text lines.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.contents())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl LineSink for MemorySink {
    fn write_line(&self, line: &[u8]) {
        self.write_parts(line, &[]);
    }

    fn write_parts(&self, head: &[u8], tail: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(head);
        buf.extend_from_slice(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_and_in_order() {
        let out = Shared::default();
        let w = NonBlocking::new(out.clone(), 1 << 20, FullPolicy::Block).expect("start");
        std::thread::scope(|s| {
            for t in 0..4 {
                let w = &w;
                s.spawn(move || {
                    for i in 0..1000 {
                        w.write_line(format!("{{\"t\":{t},\"i\":{i}}}\n").as_bytes());
                    }
                });
            }
        });
        assert!(w.flush(Duration::from_secs(5)));
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4000);
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).expect("one object per line");
            assert!(v.is_object());
        }
        assert_eq!(w.dropped(), 0);
    }

    /// A writer that never returns: models a pipe nobody reads.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>);
    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let (m, c) = &*self.0;
            let mut release = m.lock().expect("lock");
            while !*release {
                release = c.wait(release).expect("wait");
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn blocked_output_drops_and_counts_without_blocking() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let w = NonBlocking::new(Stuck(gate.clone()), 4096, FullPolicy::DropNewest).expect("start");
        let line = [b'x'; 99];
        let start = Instant::now();
        for _ in 0..10_000 {
            w.write_line(&line);
        }
        assert!(start.elapsed() < Duration::from_secs(2));
        // At most capacity/line bytes can be buffered plus one in-flight batch.
        assert!(
            w.dropped() >= 10_000 - 2 * (4096 / 99) as u64,
            "{}",
            w.dropped()
        );
        let (m, c) = &*gate;
        *m.lock().expect("lock") = true;
        c.notify_all();
        assert!(w.flush(Duration::from_secs(5)));
    }
}
