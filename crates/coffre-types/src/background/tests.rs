//! The runner's controls, observed through a worker's own counters (never through timings).

use super::*;

/// Counts its steps; busy while `work` is left, idle after.
struct Counter {
    work: u64,
}

impl Worker for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn leader_only(&self) -> bool {
        false
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_millis(5)
    }
    fn rate(&self) -> Option<(&'static str, u64)> {
        Some(("steps/s", 7))
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            if self.work == 0 {
                return Ok(Step::Idle);
            }
            self.work -= 1;
            ctl.count("done", 1);
            ctl.count("rate-seen", ctl.rate());
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(Step::Busy)
        })
    }
}

fn done(w: &Workers) -> u64 {
    w.list()[0].counters.get("done").copied().unwrap_or(0)
}

async fn until(w: &Workers, what: impl Fn(&WorkerStatus) -> bool) {
    for _ in 0..2000 {
        if what(&w.list()[0]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("never: {:?}", w.list()[0]);
}

#[tokio::test]
async fn pause_resume_rate_and_shutdown_take_effect() {
    let w = Workers::default();
    w.start(Box::new(Counter { work: 1_000_000 }), Arc::new(|| true));
    until(&w, |s| s.counters.get("done").is_some_and(|d| *d >= 5)).await;
    assert_eq!(w.list()[0].rate, Some(7));
    assert_eq!(w.list()[0].rate_unit.as_deref(), Some("steps/s"));
    w.pause("counter").unwrap();
    until(&w, |s| s.state == WorkerState::Paused).await;
    let paused_at = done(&w);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(done(&w), paused_at, "no step while paused");
    // A rate change is seen by the next steps.
    w.set_rate("counter", 1000).unwrap();
    w.resume("counter").unwrap();
    until(&w, |s| s.counters.get("done").is_some_and(|d| *d > paused_at + 5)).await;
    let seen = w.list()[0].counters["rate-seen"];
    assert!(seen > 7 * (paused_at + 5), "the new rate was read: {seen}");
    assert_eq!(w.set_rate("nobody", 1), Err(WorkerError::NoSuchWorker("nobody".into())));
    w.set_tranquility("counter", 3).unwrap();
    assert_eq!(w.list()[0].tranquility, 3);
    w.shutdown(Duration::from_secs(5)).await;
    let stopped_at = done(&w);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(done(&w), stopped_at, "no step after shutdown");
    assert!(w
        .metrics_text()
        .contains("coffre_worker_progress_total{worker=\"counter\",counter=\"done\"}"));
}

#[tokio::test]
async fn leader_only_workers_wait_on_followers_and_idle_ones_rest() {
    struct Leader;
    impl Worker for Leader {
        fn name(&self) -> &'static str {
            "leader"
        }
        fn leader_only(&self) -> bool {
            true
        }
        fn idle_wait(&self) -> Duration {
            Duration::from_millis(1)
        }
        fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
            Box::pin(async move {
                ctl.count("steps", 1);
                Ok(Step::Idle)
            })
        }
    }
    let w = Workers::default();
    let leading = Arc::new(AtomicBool::new(false));
    let l = leading.clone();
    w.start(Box::new(Leader), Arc::new(move || l.load(Ordering::Relaxed)));
    until(&w, |s| s.state == WorkerState::Standby).await;
    assert_eq!(w.list()[0].steps, 0, "a follower does not run it");
    leading.store(true, Ordering::Relaxed);
    w.wake("leader").unwrap();
    until(&w, |s| s.steps > 0 && s.state == WorkerState::Idle).await;
    assert_eq!(w.set_rate("leader", 5), Err(WorkerError::NoRate("leader".into())));
    w.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn a_pacer_spreads_bookings_at_its_rate_and_saves_nothing_up() {
    let p = Pacer::default();
    let t0 = Instant::now();
    // Unlimited: everything now.
    assert_eq!(p.book(t0, 1 << 30), t0);
    // 4 MiB/s, 1 MiB at a time, booked by tasks at the same moment: a quarter second apart.
    p.set_rate(4 << 20);
    let starts: Vec<Duration> = (0..8).map(|_| p.book(t0, 1 << 20) - t0).collect();
    for (i, s) in starts.iter().enumerate() {
        assert_eq!(s.as_millis(), 250 * i as u128);
    }
    // Asked long after the last slot ended: starts when asked, with no credit for the idle time.
    let later = t0 + Duration::from_secs(60);
    assert_eq!(p.book(later, 1 << 20), later);
    assert_eq!(p.book(later, 1 << 20) - later, Duration::from_millis(250));
    // A rate change applies to the next booking.
    p.set_rate(1 << 20);
    assert_eq!(p.book(later, 1 << 20) - later, Duration::from_millis(500));
    assert_eq!(p.book(later, 1 << 20) - later, Duration::from_millis(1500));
}
