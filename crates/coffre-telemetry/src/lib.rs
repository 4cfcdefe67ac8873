//! OpenTelemetry traces: a `tracing` layer that turns the spans of the `coffre::trace` target
//! (an S3 request, its authentication, its metadata commands, each shard read and write on
//! each node) into OTLP spans, and a thread that exports them in batches over OTLP/HTTP with
//! the JSON encoding (`POST {endpoint}/v1/traces`). Export never blocks a request: spans go
//! through a bounded queue and are dropped (counted) when it is full or the collector is
//! unreachable.

mod export;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The target whose spans are exported.
pub const TARGET: &str = "coffre::trace";

/// Spans waiting for export at most; past this, new ones are dropped.
const QUEUE: usize = 8192;

/// A finished span, as exported.
pub(crate) struct FinishedSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: u8,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(String, serde_json::Value)>,
}

/// What a live span carries (in the registry's extensions).
struct Live {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: String,
    kind: u8,
    start_ns: u64,
    attributes: Vec<(String, serde_json::Value)>,
}

/// Counters of the exporter (for logs and tests).
#[derive(Default)]
pub struct Stats {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
}

/// The exporter's counters of this process, once a layer is made.
static STATS: std::sync::OnceLock<Arc<Stats>> = std::sync::OnceLock::new();

/// The exporter's counters in Prometheus' text format (nothing when traces are off): spans
/// dropped because the collector is slow or away show as a rate, not as silence.
pub fn metrics_text() -> String {
    use std::fmt::Write;
    let Some(stats) = STATS.get() else { return String::new() };
    let mut out = String::new();
    for (name, help, value) in [
        (
            "coffre_trace_spans_exported_total",
            "Spans sent to the OTLP collector.",
            &stats.exported,
        ),
        (
            "coffre_trace_spans_dropped_total",
            "Spans dropped (the export queue full, or the collector refusing them).",
            &stats.dropped,
        ),
    ] {
        let v = value.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    out
}

/// The layer: give it to the subscriber (filtered to `TARGET`).
pub struct OtlpLayer {
    tx: SyncSender<FinishedSpan>,
    stats: Arc<Stats>,
}

/// A layer exporting to `endpoint` (`http://host:port`), and its counters. `service` names
/// the process (`service.name`).
pub fn layer(endpoint: &str, service: &str) -> Result<(OtlpLayer, Arc<Stats>), String> {
    let target = export::Target::parse(endpoint)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let stats = Arc::new(Stats::default());
    export::spawn(target, service.to_string(), rx, stats.clone())?;
    let _ = STATS.set(stats.clone());
    Ok((
        OtlpLayer {
            tx,
            stats: stats.clone(),
        },
        stats,
    ))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Fields as attributes; `otel.name` and `otel.kind` set the span's name and kind.
struct Fields<'a> {
    live: &'a mut Live,
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match (field.name(), &value) {
            ("otel.name", serde_json::Value::String(s)) => self.live.name = s.clone(),
            ("otel.kind", serde_json::Value::String(s)) => {
                self.live.kind = match s.as_str() {
                    "server" => 2,
                    "client" => 3,
                    _ => 1,
                }
            }
            (name, _) => {
                self.live.attributes.retain(|(k, _)| k != name);
                self.live.attributes.push((name.to_string(), value));
            }
        }
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, serde_json::Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, serde_json::json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, serde_json::json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, serde_json::json!(value));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for OtlpLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Live>().map(|l| (l.trace_id, l.span_id)));
        let mut live = Live {
            trace_id: parent.map_or_else(coffre_types::random_bytes::<16>, |p| p.0),
            span_id: coffre_types::random_bytes::<8>(),
            parent: parent.map(|p| p.1),
            name: attrs.metadata().name().to_string(),
            kind: 1,
            start_ns: now_ns(),
            attributes: Vec::new(),
        };
        attrs.record(&mut Fields { live: &mut live });
        span.extensions_mut().insert(live);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(live) = span.extensions_mut().get_mut::<Live>() {
                values.record(&mut Fields { live });
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(live) = span.extensions_mut().remove::<Live>() else {
            return;
        };
        let finished = FinishedSpan {
            trace_id: live.trace_id,
            span_id: live.span_id,
            parent: live.parent,
            name: live.name,
            kind: live.kind,
            start_ns: live.start_ns,
            end_ns: now_ns(),
            attributes: live.attributes,
        };
        if self.tx.try_send(finished).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
