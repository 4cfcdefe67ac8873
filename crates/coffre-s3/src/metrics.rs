//! The S3 listener's request metrics (docs/metrics.md): by operation (as AWS names it), status
//! class and tenant (capped), bytes in and out, latency histograms; errors by S3 code.

use coffre_types::metrics::{status_class, BoundedLabels, CounterFamily, HistogramFamily, LATENCY_BUCKETS};
use std::time::Duration;

/// Tenants named in labels; past these, `other`.
pub const MAX_TENANT_LABELS: usize = 100;

pub struct S3Metrics {
    requests: CounterFamily,
    errors: CounterFamily,
    received: CounterFamily,
    sent: CounterFamily,
    duration: HistogramFamily,
    tenants: BoundedLabels,
}

/// One answered request, as counted.
pub struct Answered<'a> {
    pub operation: &'a str,
    pub tenant: &'a str,
    pub status: u16,
    /// The S3 error code of a refusal.
    pub error: Option<&'a str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub took: Duration,
}

impl Default for S3Metrics {
    fn default() -> S3Metrics {
        S3Metrics {
            requests: CounterFamily::new(
                "coffre_s3_requests_total",
                "S3 requests answered, by operation, status class and tenant.",
                &["operation", "status", "tenant"],
            ),
            errors: CounterFamily::new(
                "coffre_s3_errors_total",
                "S3 requests refused, by operation and S3 error code.",
                &["operation", "code"],
            ),
            received: CounterFamily::new(
                "coffre_s3_received_bytes_total",
                "Request body bytes received (as declared), by operation and tenant.",
                &["operation", "tenant"],
            ),
            sent: CounterFamily::new(
                "coffre_s3_sent_bytes_total",
                "Response body bytes sent (as declared), by operation and tenant.",
                &["operation", "tenant"],
            ),
            duration: HistogramFamily::new(
                "coffre_s3_request_duration_seconds",
                "Time from a request's head to its answer (its body streamed after), by operation and status class.",
                &["operation", "status"],
                LATENCY_BUCKETS,
            ),
            tenants: BoundedLabels::new(MAX_TENANT_LABELS),
        }
    }
}

impl S3Metrics {
    pub fn record(&self, a: &Answered) {
        let tenant = match a.tenant {
            "" => "none",
            t => self.tenants.label(t),
        };
        let status = status_class(a.status);
        self.requests.inc(&[a.operation, status, tenant]);
        if let Some(code) = a.error {
            self.errors.inc(&[a.operation, code]);
        }
        if a.bytes_in > 0 {
            self.received.add(&[a.operation, tenant], a.bytes_in);
        }
        if a.bytes_out > 0 {
            self.sent.add(&[a.operation, tenant], a.bytes_out);
        }
        self.duration.observe(&[a.operation, status], a.took.as_secs_f64());
    }

    pub fn render(&self, out: &mut String) {
        self.requests.render(out);
        self.errors.render(out);
        self.received.render(out);
        self.sent.render(out);
        self.duration.render(out);
    }
}
