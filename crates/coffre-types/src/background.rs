//! Background workers: every job a process does by itself (GC, expiry, lifecycle, repair,
//! scrub, compaction…) is a named [`Worker`] run by [`Workers`], with a state, progress
//! counters, a rate or tranquility knob, pause and resume, and a clean shutdown (after
//! Garage's `util/background`).
//!
//! A worker does its work in steps. After a step that did work (`Busy`), it pauses
//! `tranquility` times as long as the step took before the next one (0: none), so a high
//! tranquility leaves most of the machine to requests; after a step that found nothing to do
//! (`Idle`) it waits its `idle_wait`, or until woken. A worker with a rate (shards/s, MiB/s,
//! removals/s) reads it from its [`WorkerCtl`] and paces itself. A step is never cut in the
//! middle: pause and shutdown take effect between steps.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Step, String>> + Send + 'a>>;

/// What a step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It did work and there is more: the next step comes after the tranquility pause.
    Busy,
    /// Nothing to do now: the next step comes after `idle_wait`, or when woken.
    Idle,
}

/// A job a process does by itself.
pub trait Worker: Send + 'static {
    fn name(&self) -> &'static str;
    /// Whether it runs only where it may change what the whole cluster shares (the metadata
    /// leader), or on every process.
    fn leader_only(&self) -> bool;
    /// How long it waits after an idle step.
    fn idle_wait(&self) -> Duration;
    /// What its rate knob counts, and its default (none: it has no rate).
    fn rate(&self) -> Option<(&'static str, u64)> {
        None
    }
    /// One step of work.
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a>;
}

/// A worker's state, as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    Idle,
    Busy,
    Paused,
    /// Its last step failed (`last_error` says why); it goes on.
    Error,
    /// It runs on the metadata leader, which this process is not now.
    Standby,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Paused => "paused",
            WorkerState::Error => "error",
            WorkerState::Standby => "standby",
        }
    }
}

/// A worker as `coffre admin workers list` shows it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub state: WorkerState,
    pub leader_only: bool,
    pub tranquility: u32,
    /// Its rate knob and what it counts (`None`: it has none).
    pub rate: Option<u64>,
    pub rate_unit: Option<String>,
    pub steps: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// Milliseconds since the epoch of the last step's end.
    pub last_step_ms: Option<u64>,
    /// What it has done since the process started (`shards`, `bytes`, `versions`…).
    pub counters: BTreeMap<String, u64>,
}

/// What a worker's steps see of their controls: the rate knob, and where they count.
pub struct WorkerCtl {
    shared: Arc<Shared>,
}

impl WorkerCtl {
    /// Adds `n` to the progress counter `counter`.
    pub fn count(&self, counter: &'static str, n: u64) {
        *lock(&self.shared.counters).entry(counter).or_insert(0) += n;
    }

    /// The rate knob now (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.shared.rate.load(Ordering::Relaxed)
    }

    /// Whether the worker is asked to pause or stop: a long step may end early on it.
    pub fn interrupted(&self) -> bool {
        self.shared.paused.load(Ordering::Relaxed) || self.shared.stopping.load(Ordering::Relaxed)
    }
}

struct Shared {
    name: &'static str,
    leader_only: bool,
    rate_unit: Option<&'static str>,
    state: Mutex<(WorkerState, Option<String>)>,
    paused: AtomicBool,
    stopping: AtomicBool,
    tranquility: AtomicU32,
    rate: AtomicU64,
    steps: AtomicU64,
    errors: AtomicU64,
    last_step_ms: AtomicU64,
    counters: Mutex<BTreeMap<&'static str, u64>>,
    wake: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn set(&self, state: WorkerState, error: Option<String>) {
        let mut s = lock(&self.state);
        s.0 = state;
        if error.is_some() {
            s.1 = error;
        }
    }

    /// Waits `d`, or less if woken, paused or stopped.
    async fn wait(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.wake.notified() => {}
        }
    }
}

/// Why a control did not apply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkerError {
    #[error("no worker named {0}")]
    NoSuchWorker(String),
    #[error("worker {0} has no rate")]
    NoRate(String),
}

/// The workers of a process.
#[derive(Default)]
pub struct Workers {
    list: Mutex<Vec<Arc<Shared>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Whether this process is the metadata leader now (what `leader_only` workers wait for).
pub type Leads = Arc<dyn Fn() -> bool + Send + Sync>;

impl Workers {
    /// Starts `worker` (in the current tokio runtime).
    pub fn start(&self, mut worker: Box<dyn Worker>, leads: Leads) {
        let rate = worker.rate();
        let shared = Arc::new(Shared {
            name: worker.name(),
            leader_only: worker.leader_only(),
            rate_unit: rate.map(|(unit, _)| unit),
            state: Mutex::new((WorkerState::Idle, None)),
            paused: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            tranquility: AtomicU32::new(0),
            rate: AtomicU64::new(rate.map_or(0, |(_, r)| r)),
            steps: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_step_ms: AtomicU64::new(0),
            counters: Mutex::new(BTreeMap::new()),
            wake: tokio::sync::Notify::new(),
        });
        lock(&self.list).push(shared.clone());
        let task = tokio::spawn(async move {
            let ctl = WorkerCtl { shared: shared.clone() };
            loop {
                if shared.stopping.load(Ordering::Relaxed) {
                    return;
                }
                if shared.paused.load(Ordering::Relaxed) {
                    shared.set(WorkerState::Paused, None);
                    shared.wake.notified().await;
                    continue;
                }
                if shared.leader_only && !leads() {
                    shared.set(WorkerState::Standby, None);
                    shared.wait(Duration::from_secs(1)).await;
                    continue;
                }
                shared.set(WorkerState::Busy, None);
                let started = Instant::now();
                let result = worker.step(&ctl).await;
                shared.steps.fetch_add(1, Ordering::Relaxed);
                shared.last_step_ms.store(crate::now_millis(), Ordering::Relaxed);
                match result {
                    Ok(Step::Busy) => {
                        let t = shared.tranquility.load(Ordering::Relaxed);
                        shared.wait(started.elapsed().saturating_mul(t)).await;
                    }
                    Ok(Step::Idle) => {
                        shared.set(WorkerState::Idle, None);
                        shared.wait(worker.idle_wait()).await;
                    }
                    Err(e) => {
                        tracing::warn!(worker = shared.name, error = %e, "background work failed; retried");
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                        shared.set(WorkerState::Error, Some(e));
                        shared.wait(worker.idle_wait().max(Duration::from_secs(1))).await;
                    }
                }
            }
        });
        lock(&self.tasks).push(task);
    }

    fn find(&self, name: &str) -> Result<Arc<Shared>, WorkerError> {
        lock(&self.list)
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| WorkerError::NoSuchWorker(name.to_string()))
    }

    /// Every worker, by name.
    pub fn list(&self) -> Vec<WorkerStatus> {
        let mut out: Vec<WorkerStatus> = lock(&self.list)
            .iter()
            .map(|s| {
                let (state, last_error) = lock(&s.state).clone();
                let last = s.last_step_ms.load(Ordering::Relaxed);
                WorkerStatus {
                    name: s.name.to_string(),
                    state,
                    leader_only: s.leader_only,
                    tranquility: s.tranquility.load(Ordering::Relaxed),
                    rate: s.rate_unit.map(|_| s.rate.load(Ordering::Relaxed)),
                    rate_unit: s.rate_unit.map(str::to_string),
                    steps: s.steps.load(Ordering::Relaxed),
                    errors: s.errors.load(Ordering::Relaxed),
                    last_error,
                    last_step_ms: (last > 0).then_some(last),
                    counters: lock(&s.counters).iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Pauses a worker after its current step.
    pub fn pause(&self, name: &str) -> Result<(), WorkerError> {
        let s = self.find(name)?;
        s.paused.store(true, Ordering::Relaxed);
        s.wake.notify_one();
        Ok(())
    }

    pub fn resume(&self, name: &str) -> Result<(), WorkerError> {
        let s = self.find(name)?;
        s.paused.store(false, Ordering::Relaxed);
        s.wake.notify_one();
        Ok(())
    }

    /// Asks a worker to step now rather than after its wait.
    pub fn wake(&self, name: &str) -> Result<(), WorkerError> {
        self.find(name)?.wake.notify_one();
        Ok(())
    }

    pub fn set_tranquility(&self, name: &str, tranquility: u32) -> Result<(), WorkerError> {
        self.find(name)?.tranquility.store(tranquility, Ordering::Relaxed);
        Ok(())
    }

    pub fn set_rate(&self, name: &str, rate: u64) -> Result<(), WorkerError> {
        let s = self.find(name)?;
        if s.rate_unit.is_none() {
            return Err(WorkerError::NoRate(name.to_string()));
        }
        s.rate.store(rate, Ordering::Relaxed);
        s.wake.notify_one();
        Ok(())
    }

    /// A worker's rate knob now (`None`: no such worker, or it has no rate), for work it
    /// drives that spans more than a step.
    pub fn rate_of(&self, name: &str) -> Option<u64> {
        let s = self.find(name).ok()?;
        s.rate_unit.map(|_| s.rate.load(Ordering::Relaxed))
    }

    /// Stops every worker after its current step, waiting at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        for s in lock(&self.list).iter() {
            s.stopping.store(true, Ordering::Relaxed);
            s.wake.notify_one();
        }
        let tasks: Vec<_> = std::mem::take(&mut *lock(&self.tasks));
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background workers still busy at shutdown; stopping");
        }
    }

    /// The workers' states and counters, in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let list = self.list();
        let mut m = String::new();
        let _ = writeln!(
            m,
            "# HELP coffre_worker_state A background worker's state (1 for the state it is in).\n# TYPE coffre_worker_state gauge"
        );
        for w in &list {
            for state in ["idle", "busy", "paused", "error", "standby"] {
                let on = w.state.as_str() == state;
                let _ = writeln!(
                    m,
                    "coffre_worker_state{{worker=\"{}\",state=\"{state}\"}} {}",
                    w.name,
                    u8::from(on)
                );
            }
        }
        let _ = writeln!(
            m,
            "# HELP coffre_worker_steps_total Steps a background worker ran.\n# TYPE coffre_worker_steps_total counter"
        );
        for w in &list {
            let _ = writeln!(m, "coffre_worker_steps_total{{worker=\"{}\"}} {}", w.name, w.steps);
        }
        let _ = writeln!(
            m,
            "# HELP coffre_worker_errors_total Steps that failed.\n# TYPE coffre_worker_errors_total counter"
        );
        for w in &list {
            let _ = writeln!(m, "coffre_worker_errors_total{{worker=\"{}\"}} {}", w.name, w.errors);
        }
        let _ = writeln!(
            m,
            "# HELP coffre_worker_progress_total What a background worker has done, by counter.\n# TYPE coffre_worker_progress_total counter"
        );
        for w in &list {
            for (c, v) in &w.counters {
                let _ = writeln!(
                    m,
                    "coffre_worker_progress_total{{worker=\"{}\",counter=\"{c}\"}} {v}",
                    w.name
                );
            }
        }
        let _ = writeln!(
            m,
            "# HELP coffre_worker_rate A worker's rate knob (0: unlimited).\n# TYPE coffre_worker_rate gauge"
        );
        for w in &list {
            if let Some(r) = w.rate {
                let _ = writeln!(m, "coffre_worker_rate{{worker=\"{}\"}} {r}", w.name);
            }
        }
        m
    }
}

/// Spreads work shared by concurrent tasks over time at a byte rate (0: unlimited): each
/// `take(n)` books the next `n` bytes' slot and waits for its start. Time left unused is not
/// saved up: after a pause the rate resumes, it does not burst.
#[derive(Default)]
pub struct Pacer {
    bytes_per_sec: AtomicU64,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.bytes_per_sec.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// Books `bytes` at `now`: when they may start (`now` if the rate is unlimited).
    pub fn book(&self, now: Instant, bytes: u64) -> Instant {
        let rate = self.bytes_per_sec.load(Ordering::Relaxed);
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if rate == 0 {
            *next = None;
            return now;
        }
        let start = next.map_or(now, |n| n.max(now));
        *next = Some(start + Duration::from_secs_f64(bytes as f64 / rate as f64));
        start
    }

    /// Waits for the slot of `bytes`.
    pub async fn take(&self, bytes: u64) {
        let start = self.book(Instant::now(), bytes);
        tokio::time::sleep_until(start.into()).await;
    }
}

#[cfg(test)]
mod tests;
