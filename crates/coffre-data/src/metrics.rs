//! The data path's metrics (docs/metrics.md): shard reads and writes per node with their
//! outcome and time, read repairs, degraded writes, erasure coding time, inlined and stored
//! parts. Process-wide (one gateway per process), rendered into the admin API's `/metrics`.

use coffre_types::metrics::{CounterFamily, HistogramFamily, STEP_BUCKETS};
use std::time::Instant;

pub struct DataMetrics {
    pub shard_reads: CounterFamily,
    pub shard_writes: CounterFamily,
    pub shard_read_seconds: HistogramFamily,
    pub shard_write_seconds: HistogramFamily,
    pub read_repairs: CounterFamily,
    pub degraded_writes: CounterFamily,
    pub encode_seconds: HistogramFamily,
    pub decode_seconds: HistogramFamily,
    pub parts_written: CounterFamily,
}

pub static DATA: DataMetrics = DataMetrics {
    shard_reads: CounterFamily::new(
        "coffre_shard_reads_total",
        "Shard reads by node and result: ok, corrupt (BLAKE3 mismatch), error (unreadable, node down).",
        &["node", "result"],
    ),
    shard_writes: CounterFamily::new(
        "coffre_shard_writes_total",
        "Shard writes by node and result: ok, error.",
        &["node", "result"],
    ),
    shard_read_seconds: HistogramFamily::new(
        "coffre_shard_read_seconds",
        "Time of a shard read on a node (its transfer included).",
        &["node"],
        STEP_BUCKETS,
    ),
    shard_write_seconds: HistogramFamily::new(
        "coffre_shard_write_seconds",
        "Time of a shard write on a node (durable when it answers).",
        &["node"],
        STEP_BUCKETS,
    ),
    read_repairs: CounterFamily::new(
        "coffre_read_repairs_total",
        "Shards a read found bad and rewrote from the others, by result.",
        &["result"],
    ),
    degraded_writes: CounterFamily::new(
        "coffre_degraded_writes_total",
        "Parts written with some shards missing (still at write quorum; healed in the background).",
        &[],
    ),
    encode_seconds: HistogramFamily::new(
        "coffre_erasure_encode_seconds",
        "Time to encrypt and erasure-code one stripe.",
        &[],
        STEP_BUCKETS,
    ),
    decode_seconds: HistogramFamily::new(
        "coffre_erasure_decode_seconds",
        "Time to rebuild missing shards of a stripe (a degraded read or a repair).",
        &[],
        STEP_BUCKETS,
    ),
    parts_written: CounterFamily::new(
        "coffre_parts_written_total",
        "Parts written, inlined in their metadata record or stored as shards.",
        &["kind"],
    ),
};

impl DataMetrics {
    pub fn render(&self, out: &mut String) {
        self.shard_reads.render(out);
        self.shard_writes.render(out);
        self.shard_read_seconds.render(out);
        self.shard_write_seconds.render(out);
        self.read_repairs.render(out);
        self.degraded_writes.render(out);
        self.encode_seconds.render(out);
        self.decode_seconds.render(out);
        self.parts_written.render(out);
    }
}

/// Seconds since `started`.
pub(crate) fn since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}
