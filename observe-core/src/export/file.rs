//! The embedded default: spans and log records appended as OTLP/JSON lines to
//! local files, and a reader for them.
//!
//! With no OTLP endpoint, [`init`](crate::init) writes `traces.jsonl` and
//! `logs.jsonl` under `observe-data/` in the working directory (or
//! `OBSERVE_EXPORT_DIR`; `none` switches it off). Each line is one
//! `ExportTraceServiceRequest` / `ExportLogsServiceRequest` in OTLP/JSON, the
//! format of the Collector's `file` exporter, so the Collector's `otlpjson`
//! receiver, `jq` and [`read_spans`] all read it. A file is rotated when it
//! would pass [`DEFAULT_MAX_FILE_BYTES`] (`traces.jsonl` → `traces.1.jsonl`
//! → … → `traces.<keep>.jsonl`, the oldest deleted).
//!
//! ```no_run
//! # fn main() -> Result<(), observe_core::export::file::ReadError> {
//! let spans = observe_core::export::file::read_spans("observe-data")?;
//! for s in spans.iter().filter(|s| s.parent_span_id.is_none()) {
//!     println!("{} {} {} ms", s.trace_id, s.name, s.duration_nanos() / 1_000_000);
//! }
//! # Ok(()) }
//! ```

use super::json;
use opentelemetry::trace::SpanKind;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Size at which a file is rotated: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
/// Rotated files kept per signal.
pub const DEFAULT_KEEP_FILES: usize = 4;
/// The folder used when neither the builder nor `OBSERVE_EXPORT_DIR` names one.
pub const DEFAULT_DIR: &str = "observe-data";

/// An append-only `<stem>.jsonl`, rotated by size.
struct Rotating {
    dir: PathBuf,
    stem: &'static str,
    max_bytes: u64,
    keep: usize,
    file: Option<(File, u64)>,
}

impl Rotating {
    fn path(&self, n: usize) -> PathBuf {
        if n == 0 {
            self.dir.join(format!("{}.jsonl", self.stem))
        } else {
            self.dir.join(format!("{}.{n}.jsonl", self.stem))
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some((_, size)) = &self.file {
            if *size > 0 && *size + bytes.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
        }
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(0))?;
            let size = f.metadata()?.len();
            self.file = Some((f, size));
            if size > 0 && size + bytes.len() as u64 > self.max_bytes {
                self.rotate()?;
                return self.write(bytes);
            }
        }
        if let Some((f, size)) = &mut self.file {
            f.write_all(bytes)?;
            *size += bytes.len() as u64;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            return std::fs::remove_file(self.path(0));
        }
        let _ = std::fs::remove_file(self.path(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.path(n);
            if from.exists() {
                std::fs::rename(&from, self.path(n + 1))?;
            }
        }
        std::fs::rename(self.path(0), self.path(1))
    }
}

struct FileWriter {
    file: Mutex<Rotating>,
    resource: Vec<u8>,
}

impl FileWriter {
    fn new(dir: PathBuf, stem: &'static str) -> Self {
        FileWriter {
            file: Mutex::new(Rotating {
                dir,
                stem,
                max_bytes: DEFAULT_MAX_FILE_BYTES,
                keep: DEFAULT_KEEP_FILES,
                file: None,
            }),
            resource: json::resource(&Resource::builder_empty().build()),
        }
    }

    fn rotation(self, max_bytes: u64, keep: usize) -> Self {
        {
            let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
            f.max_bytes = max_bytes.max(1);
            f.keep = keep;
        }
        self
    }

    fn write(&self, line: &[u8]) -> OTelSdkResult {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write(line).map_err(|e| {
            // Reopen next time (the folder may have been removed).
            f.file = None;
            OTelSdkError::InternalFailure(format!("{}: {e}", f.path(0).display()))
        })
    }

    fn close(&self) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((file, _)) = &mut f.file {
            let _ = file.flush();
        }
        f.file = None;
    }

    fn dir(&self) -> PathBuf {
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dir
            .clone()
    }
}

/// The constructor, rotation setting and `Debug` of a file exporter
/// writing `<dir>/<file>.jsonl`.
macro_rules! file_exporter {
    ($ty:ident, $file:literal) => {
        impl $ty {
            #[doc = concat!("Appends to `<dir>/", $file, ".jsonl` (the folder is created on first write).")]
            pub fn new(dir: impl Into<PathBuf>) -> Self {
                $ty {
                    w: FileWriter::new(dir.into(), $file),
                }
            }

            /// Rotates at `max_bytes`, keeping `keep` older files (default 64 MiB, 4).
            pub fn rotation(self, max_bytes: u64, keep: usize) -> Self {
                $ty {
                    w: self.w.rotation(max_bytes, keep),
                }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("dir", &self.w.dir())
                    .finish()
            }
        }
    };
}

/// Writes spans to `<dir>/traces.jsonl` (one `ExportTraceServiceRequest`
/// per batch and line). Use it behind a
/// [`SpanPipeline`](super::SpanPipeline): `export` does blocking
/// file I/O on the pipeline's thread.
pub struct FileSpanExporter {
    w: FileWriter,
}

file_exporter!(FileSpanExporter, "traces");

impl SpanExporter for FileSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let mut line = Vec::with_capacity(512 * batch.len());
        json::trace_request(&mut line, &self.w.resource, &batch);
        self.w.write(&line)
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        self.w.close();
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.w.resource = json::resource(resource);
    }
}

/// Writes log records to `<dir>/logs.jsonl` (one `ExportLogsServiceRequest`
/// per batch and line). Use it behind a
/// [`LogPipeline`](super::LogPipeline).
pub struct FileLogExporter {
    w: FileWriter,
}

file_exporter!(FileLogExporter, "logs");

impl LogExporter for FileLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().collect();
        if records.is_empty() {
            return Ok(());
        }
        let mut line = Vec::with_capacity(384 * records.len());
        json::logs_request(&mut line, &self.w.resource, &records);
        self.w.write(&line)
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        self.w.close();
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.w.resource = json::resource(resource);
    }
}

/// Why a file could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file or folder could not be read.
    #[error("could not read {path:?}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line is not an OTLP/JSON export request.
    #[error("{path:?} line {line}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A span's status, read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoredStatus {
    /// Not set.
    #[default]
    Unset,
    /// Explicitly OK.
    Ok,
    /// Failed, with the description.
    Error(String),
}

/// A span event, read back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Its name (observe: the log event's name).
    pub name: String,
    /// When it happened, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// Its attributes (strings, integers, doubles, booleans, arrays, maps).
    pub attributes: BTreeMap<String, Json>,
}

/// One span as read back from a `traces.jsonl` file.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id; `None` for a root.
    pub parent_span_id: Option<String>,
    /// The span name.
    pub name: String,
    /// Server, client, internal, ...
    pub kind: SpanKind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Attributes (strings, integers, doubles, booleans, arrays, maps).
    pub attributes: BTreeMap<String, Json>,
    /// The status.
    pub status: StoredStatus,
    /// Events, in order.
    pub events: Vec<StoredEvent>,
    /// The resource's `service.name`.
    pub service_name: Option<String>,
}

impl StoredSpan {
    /// End minus start.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// An attribute as a string (strings as they are, other values as JSON).
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.attributes.get(key).map(|v| match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// One log record as read back from a `logs.jsonl` file.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredLogRecord {
    /// 32 hex digits, when logged inside a span.
    pub trace_id: Option<String>,
    /// 16 hex digits, when logged inside a span.
    pub span_id: Option<String>,
    /// When it was logged, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// OTLP severity number (9 = INFO, 13 = WARN, 17 = ERROR).
    pub severity_number: i64,
    /// `INFO`, `WARN`, ...
    pub severity_text: String,
    /// observe's event name.
    pub event_name: String,
    /// The body (the message), if any.
    pub body: Option<Json>,
    /// Attributes (the event's fields).
    pub attributes: BTreeMap<String, Json>,
}

/// Reads every span of a `traces.jsonl` file, or of a folder's
/// `traces.<n>.jsonl` and `traces.jsonl` (oldest first). An unfinished last
/// line (a writer mid-append) is skipped.
pub fn read_spans(path: impl AsRef<Path>) -> Result<Vec<StoredSpan>, ReadError> {
    let mut out = Vec::new();
    for file in files(path.as_ref(), "traces")? {
        for_each_line(&file, |line_no, v| {
            let bad = |reason: &str| ReadError::Format {
                path: file.clone(),
                line: line_no,
                reason: reason.to_owned(),
            };
            let rs = v
                .get("resourceSpans")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("no resourceSpans array"))?;
            for r in rs {
                let service = r
                    .get("resource")
                    .map(|res| attributes(res.get("attributes")))
                    .and_then(|a| {
                        a.get("service.name")
                            .and_then(Json::as_str)
                            .map(str::to_owned)
                    });
                for ss in array(r.get("scopeSpans")) {
                    for s in array(ss.get("spans")) {
                        out.push(span(s, service.clone()).map_err(|e| bad(&e))?);
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Reads every log record of a `logs.jsonl` file, or of a folder's
/// `logs.<n>.jsonl` and `logs.jsonl` (oldest first).
pub fn read_log_records(path: impl AsRef<Path>) -> Result<Vec<StoredLogRecord>, ReadError> {
    let mut out = Vec::new();
    for file in files(path.as_ref(), "logs")? {
        for_each_line(&file, |line_no, v| {
            let rl = v
                .get("resourceLogs")
                .and_then(Json::as_array)
                .ok_or_else(|| ReadError::Format {
                    path: file.clone(),
                    line: line_no,
                    reason: "no resourceLogs array".to_owned(),
                })?;
            for r in rl {
                for sl in array(r.get("scopeLogs")) {
                    for l in array(sl.get("logRecords")) {
                        out.push(StoredLogRecord {
                            trace_id: string(l.get("traceId")).filter(|s| !s.is_empty()),
                            span_id: string(l.get("spanId")).filter(|s| !s.is_empty()),
                            time_unix_nanos: uint(l.get("timeUnixNano")),
                            severity_number: l
                                .get("severityNumber")
                                .and_then(Json::as_i64)
                                .unwrap_or(0),
                            severity_text: string(l.get("severityText")).unwrap_or_default(),
                            event_name: string(l.get("eventName")).unwrap_or_default(),
                            body: l.get("body").map(any_value),
                            attributes: attributes(l.get("attributes")),
                        });
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn files(path: &Path, stem: &str) -> Result<Vec<PathBuf>, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut rotated: Vec<(usize, PathBuf)> = Vec::new();
    let mut current = None;
    for entry in std::fs::read_dir(path).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(stem)
            .and_then(|r| r.strip_suffix(".jsonl"))
        else {
            continue;
        };
        if rest.is_empty() {
            current = Some(entry.path());
        } else if let Some(n) = rest.strip_prefix('.').and_then(|n| n.parse::<usize>().ok()) {
            rotated.push((n, entry.path()));
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.extend(current);
    Ok(out)
}

fn for_each_line(
    file: &Path,
    mut f: impl FnMut(usize, Json) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let io_err = |source| ReadError::Io {
        path: file.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(file).map_err(io_err)?);
    let mut buf = String::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if reader.read_line(&mut buf).map_err(io_err)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if !buf.ends_with('\n') {
            // A writer is still appending this line.
            return Ok(());
        }
        if buf.trim().is_empty() {
            continue;
        }
        let v: Json = serde_json::from_str(&buf).map_err(|e| ReadError::Format {
            path: file.to_owned(),
            line: line_no,
            reason: e.to_string(),
        })?;
        f(line_no, v)?;
    }
}

fn array(v: Option<&Json>) -> &[Json] {
    v.and_then(Json::as_array).map_or(&[], Vec::as_slice)
}

fn string(v: Option<&Json>) -> Option<String> {
    v.and_then(Json::as_str).map(str::to_owned)
}

/// A protobuf-JSON 64-bit integer: a decimal string or a number.
fn uint(v: Option<&Json>) -> u64 {
    match v {
        Some(Json::String(s)) => s.parse().unwrap_or(0),
        Some(Json::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn attributes(v: Option<&Json>) -> BTreeMap<String, Json> {
    array(v)
        .iter()
        .filter_map(|kv| {
            let k = kv.get("key")?.as_str()?.to_owned();
            Some((k, kv.get("value").map_or(Json::Null, any_value)))
        })
        .collect()
}

/// An OTLP `AnyValue` as plain JSON (`{"intValue":"42"}` → `42`).
fn any_value(v: &Json) -> Json {
    let Some(obj) = v.as_object() else {
        return Json::Null;
    };
    if let Some(s) = obj.get("stringValue") {
        return s.clone();
    }
    if let Some(b) = obj.get("boolValue") {
        return b.clone();
    }
    if let Some(i) = obj.get("intValue") {
        return match i {
            Json::String(s) => s.parse::<i64>().map_or_else(|_| i.clone(), Json::from),
            other => other.clone(),
        };
    }
    if let Some(d) = obj.get("doubleValue") {
        return d.clone();
    }
    if let Some(a) = obj.get("arrayValue") {
        return Json::Array(array(a.get("values")).iter().map(any_value).collect());
    }
    if let Some(kv) = obj.get("kvlistValue") {
        return Json::Object(attributes(kv.get("values")).into_iter().collect());
    }
    if let Some(b) = obj.get("bytesValue") {
        return b.clone();
    }
    Json::Null
}

fn span(s: &Json, service_name: Option<String>) -> Result<StoredSpan, String> {
    let id = |key: &str, len: usize| -> Result<Option<String>, String> {
        match s.get(key).and_then(Json::as_str) {
            None | Some("") => Ok(None),
            Some(h) if h.len() == len && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Some(h.to_ascii_lowercase()))
            }
            Some(h) => Err(format!("{key} {h:?} is not {len} hex digits")),
        }
    };
    let kind = match s.get("kind").and_then(Json::as_i64).unwrap_or(1) {
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        4 => SpanKind::Producer,
        5 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    let status = match s.get("status") {
        Some(st) => match st.get("code").and_then(Json::as_i64).unwrap_or(0) {
            1 => StoredStatus::Ok,
            2 => StoredStatus::Error(string(st.get("message")).unwrap_or_default()),
            _ => StoredStatus::Unset,
        },
        None => StoredStatus::Unset,
    };
    Ok(StoredSpan {
        trace_id: id("traceId", 32)?.ok_or("a span has no traceId")?,
        span_id: id("spanId", 16)?.ok_or("a span has no spanId")?,
        parent_span_id: id("parentSpanId", 16)?,
        name: string(s.get("name")).unwrap_or_default(),
        kind,
        start_unix_nanos: uint(s.get("startTimeUnixNano")),
        end_unix_nanos: uint(s.get("endTimeUnixNano")),
        attributes: attributes(s.get("attributes")),
        status,
        events: array(s.get("events"))
            .iter()
            .map(|e| StoredEvent {
                name: string(e.get("name")).unwrap_or_default(),
                time_unix_nanos: uint(e.get("timeUnixNano")),
                attributes: attributes(e.get("attributes")),
            })
            .collect(),
        service_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_n_files_and_the_reader_reads_them_oldest_first() {
        let dir = std::env::temp_dir().join(format!(
            "observe-rotation-{}-{}",
            std::process::id(),
            crate::ids::random_u64()
        ));
        let mut r = Rotating {
            dir: dir.clone(),
            stem: "traces",
            max_bytes: 200,
            keep: 2,
            file: None,
        };
        let line = |i: u32| {
            format!(
                "{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[{{\"traceId\":\"{:032x}\",\"spanId\":\"{:016x}\",\"name\":\"s{i}\"}}]}}]}}]}}\n",
                i, i
            )
        };
        for i in 1..=8 {
            r.write(line(i).as_bytes()).expect("write");
        }
        let spans = read_spans(&dir).expect("read");
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        // ~130 bytes a line: one line per file, the current file and two rotated ones.
        assert_eq!(names, vec!["s6", "s7", "s8"]);
        assert!(!dir.join("traces.3.jsonl").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        let dir = std::env::temp_dir().join(format!("observe-bad-{}", crate::ids::random_u64()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("traces.jsonl");
        std::fs::write(&f, "{\"resourceSpans\":[]}\nnot json\n").expect("write");
        match read_spans(&f) {
            Err(ReadError::Format { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        std::fs::write(&f, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"xyz\",\"spanId\":\"00f067aa0ba902b7\"}]}]}]}\n{\"partial").expect("write");
        assert!(matches!(
            read_spans(&f),
            Err(ReadError::Format { line: 1, .. })
        ));
        std::fs::write(&f, "{\"resourceSpans\":[]}\n{\"partial").expect("write");
        assert_eq!(read_spans(&f).expect("partial last line skipped"), vec![]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
