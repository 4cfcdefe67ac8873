//! Prometheus metrics: counters and histograms in labelled families, rendered in the text
//! exposition format (0.0.4). Recording takes a read lock on the family's map and an atomic
//! add; a new label set takes the write lock once. Label values come from bounded sets (S3
//! operation names, status classes, node ids, tenants capped by `BoundedLabels`): never a
//! bucket or a key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Request latency buckets, in seconds: from a cached 4 KiB GET to a 5 GiB part.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets for short internal steps (an erasure encode, a shard read), in seconds.
pub const STEP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// A label value, escaped as the text format wants (`\`, `"`, newline).
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{a="x",b="y"}` (empty with no label), with `extra` (e.g. `le`) last.
fn label_text(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        pairs.push(format!("{n}=\"{v}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn key(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|l| l.to_string()).collect()
}

/// Counters sharing a name, one per label set.
pub struct CounterFamily {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: RwLock<BTreeMap<Vec<String>, Arc<AtomicU64>>>,
}

impl CounterFamily {
    pub const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> CounterFamily {
        CounterFamily {
            name,
            help,
            labels,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    fn series(&self, labels: &[&str]) -> Arc<AtomicU64> {
        debug_assert_eq!(labels.len(), self.labels.len(), "{}: label count", self.name);
        let k = key(labels);
        let found = read(&self.series).get(&k).cloned();
        found.unwrap_or_else(|| write(&self.series).entry(k).or_default().clone())
    }

    /// Adds `n` to the counter of `labels` (values in the order of the family's names).
    pub fn add(&self, labels: &[&str], n: u64) {
        self.series(labels).fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    /// The counter of `labels` (0 if never counted).
    pub fn get(&self, labels: &[&str]) -> u64 {
        read(&self.series)
            .get(&key(labels))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} counter", self.name, self.help, self.name);
        for (values, c) in read(&self.series).iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                label_text(self.labels, values, None),
                c.load(Ordering::Relaxed)
            );
        }
    }
}

/// One histogram: a count per bucket (not cumulative: summed when rendered), the sum in
/// microseconds, and the count.
struct Histogram {
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Histograms sharing a name and buckets, one per label set.
pub struct HistogramFamily {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    series: RwLock<BTreeMap<Vec<String>, Arc<Histogram>>>,
}

impl HistogramFamily {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> HistogramFamily {
        HistogramFamily {
            name,
            help,
            labels,
            bounds,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    /// Records one observation of `seconds` under `labels`.
    pub fn observe(&self, labels: &[&str], seconds: f64) {
        debug_assert_eq!(labels.len(), self.labels.len(), "{}: label count", self.name);
        let k = key(labels);
        // The read guard must be gone before the write lock is taken (a match on it would
        // hold it through its arms).
        let found = read(&self.series).get(&k).cloned();
        let h = match found {
            Some(h) => h,
            None => write(&self.series)
                .entry(k)
                .or_insert_with(|| {
                    Arc::new(Histogram {
                        buckets: (0..=self.bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                        sum_micros: AtomicU64::new(0),
                        count: AtomicU64::new(0),
                    })
                })
                .clone(),
        };
        // The first bucket whose bound holds it; past the last: +Inf only.
        let i = self
            .bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.bounds.len());
        h.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = (seconds.max(0.0) * 1e6) as u64;
        h.sum_micros.fetch_add(micros, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (count, the cumulative count of every bucket bound) of `labels`.
    pub fn snapshot(&self, labels: &[&str]) -> (u64, Vec<(f64, u64)>) {
        match read(&self.series).get(&key(labels)) {
            None => (0, self.bounds.iter().map(|b| (*b, 0)).collect()),
            Some(h) => {
                let mut acc = 0;
                let cumulative = self
                    .bounds
                    .iter()
                    .zip(&h.buckets)
                    .map(|(b, c)| {
                        acc += c.load(Ordering::Relaxed);
                        (*b, acc)
                    })
                    .collect();
                (h.count.load(Ordering::Relaxed), cumulative)
            }
        }
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} histogram",
            self.name, self.help, self.name
        );
        for (values, h) in read(&self.series).iter() {
            let mut acc = 0u64;
            for (i, c) in h.buckets.iter().enumerate() {
                acc += c.load(Ordering::Relaxed);
                let le = match self.bounds.get(i) {
                    Some(b) => b.to_string(),
                    None => "+Inf".to_string(),
                };
                let _ = writeln!(
                    out,
                    "{}_bucket{} {acc}",
                    self.name,
                    label_text(self.labels, values, Some(("le", &le)))
                );
            }
            let labels = label_text(self.labels, values, None);
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{}_sum{labels} {sum}", self.name);
            let _ = writeln!(out, "{}_count{labels} {}", self.name, h.count.load(Ordering::Relaxed));
        }
    }
}

/// A label whose values are not bounded by nature (tenants): the first `max` values seen keep
/// their name, the others are counted under `other`, so that a store with many tenants cannot
/// make the series count grow without limit.
pub struct BoundedLabels {
    max: usize,
    seen: Mutex<BTreeSet<String>>,
}

pub const OTHER: &str = "other";

impl BoundedLabels {
    pub const fn new(max: usize) -> BoundedLabels {
        BoundedLabels {
            max,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// The label value for `v`: itself, or `other` once `max` others have been seen.
    pub fn label<'a>(&self, v: &'a str) -> &'a str {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(v) {
            return v;
        }
        if seen.len() < self.max {
            seen.insert(v.to_string());
            return v;
        }
        OTHER
    }
}

/// `2xx`, `3xx`, `4xx`, `5xx`: the status class of a label.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A gauge line (with its TYPE and HELP) for values computed at scrape time.
pub fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// One sample line: `name{labels} value`.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    let text: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
    if text.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", text.join(","));
    }
}

/// The process: resident memory, descriptors open and allowed, the tokio runtime's tasks (of
/// the runtime this is called on, if any). Read from /proc at scrape time.
pub fn process_metrics(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(rss) = kib("VmRSS:") {
        gauge_header(out, "process_resident_memory_bytes", "Resident memory size in bytes.");
        sample(out, "process_resident_memory_bytes", &[], rss.saturating_mul(1024));
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge_header(out, "process_open_fds", "Open file descriptors (sockets included).");
        sample(out, "process_open_fds", &[], fds.count());
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(max) = max_fds {
        gauge_header(out, "process_max_fds", "The limit of open file descriptors.");
        sample(out, "process_max_fds", &[], max);
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let m = rt.metrics();
        gauge_header(out, "coffre_tokio_workers", "Worker threads of the async runtime.");
        sample(out, "coffre_tokio_workers", &[], m.num_workers());
        gauge_header(out, "coffre_tokio_alive_tasks", "Tasks alive in the async runtime.");
        sample(out, "coffre_tokio_alive_tasks", &[], m.num_alive_tasks());
        gauge_header(
            out,
            "coffre_tokio_global_queue_depth",
            "Tasks waiting in the runtime's global queue.",
        );
        sample(out, "coffre_tokio_global_queue_depth", &[], m.global_queue_depth());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let c = CounterFamily::new("t_requests_total", "Requests.", &["operation", "status"]);
        c.inc(&["GetObject", "2xx"]);
        c.add(&["GetObject", "2xx"], 2);
        c.inc(&["PutObject", "4xx"]);
        assert_eq!(c.get(&["GetObject", "2xx"]), 3);
        let mut out = String::new();
        c.render(&mut out);
        assert!(out.contains("# TYPE t_requests_total counter\n"));
        assert!(out.contains("t_requests_total{operation=\"GetObject\",status=\"2xx\"} 3\n"));
        assert!(out.contains("t_requests_total{operation=\"PutObject\",status=\"4xx\"} 1\n"));

        let h = HistogramFamily::new("t_seconds", "Latency.", &["operation"], &[0.01, 0.1, 1.0]);
        h.observe(&["GetObject"], 0.005);
        h.observe(&["GetObject"], 0.05);
        h.observe(&["GetObject"], 5.0);
        let (count, cumulative) = h.snapshot(&["GetObject"]);
        assert_eq!(count, 3);
        assert_eq!(cumulative, vec![(0.01, 1), (0.1, 2), (1.0, 2)]);
        let mut out = String::new();
        h.render(&mut out);
        assert!(out.contains("t_seconds_bucket{operation=\"GetObject\",le=\"0.01\"} 1\n"));
        assert!(out.contains("t_seconds_bucket{operation=\"GetObject\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("t_seconds_count{operation=\"GetObject\"} 3\n"));
        assert!(out.contains("t_seconds_sum{operation=\"GetObject\"} 5.055\n"));
    }

    #[test]
    fn new_label_sets_from_many_threads_at_once_do_not_block() {
        let c = std::sync::Arc::new(CounterFamily::new("t_total", "T.", &["n"]));
        let h = std::sync::Arc::new(HistogramFamily::new("t_seconds", "T.", &["n"], STEP_BUCKETS));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (c, h) = (c.clone(), h.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let n = format!("{}", (i * 7 + t) % 50);
                        c.inc(&[&n]);
                        h.observe(&[&n], 0.001);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let total: u64 = (0..50).map(|n| c.get(&[&n.to_string()])).sum();
        assert_eq!(total, 800);
        let observed: u64 = (0..50).map(|n| h.snapshot(&[&n.to_string()]).0).sum();
        assert_eq!(observed, 800);
    }

    #[test]
    fn the_process_is_described() {
        let mut out = String::new();
        process_metrics(&mut out);
        let value = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} in {out}"))
        };
        assert!(value("process_resident_memory_bytes") > 1 << 20);
        assert!(value("process_open_fds") >= 3);
        assert!(value("process_max_fds") >= value("process_open_fds"));
    }

    #[test]
    fn label_values_are_escaped_and_unbounded_ones_capped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let tenants = BoundedLabels::new(2);
        assert_eq!(tenants.label("a"), "a");
        assert_eq!(tenants.label("b"), "b");
        assert_eq!(tenants.label("c"), OTHER);
        assert_eq!(tenants.label("a"), "a");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
    }
}
