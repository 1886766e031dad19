use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::sleep;

use super::*;
use crate::model::{HostName, Pair, ProjectName};

fn key(project: &str, host: &str) -> JobKey {
    JobKey { pair: Pair::new(ProjectName::new(project).unwrap(), HostName::new(host).unwrap()) }
}

fn limits(workers: usize, per_host: usize, queue: usize) -> Limits {
    Limits { max_workers: workers, max_per_host: per_host, queue_capacity: queue, ..Limits::default() }
}

/// Counts jobs running at once and remembers the highest count.
#[derive(Default, Clone)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Gauge {
    async fn hold(&self, d: Duration) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        sleep(d).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn global_limit_is_respected() {
    let s = Scheduler::new(limits(3, 10, 100));
    let g = Gauge::default();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let g = g.clone();
            s.submit(
                key(&format!("p{i}"), &format!("h{i}")),
                move |_| async move { g.hold(Duration::from_secs(1)).await },
            )
            .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().await.unwrap();
    }
    assert_eq!(g.max(), 3);
}

#[tokio::test(start_paused = true)]
async fn per_host_limit_and_other_hosts_not_blocked() {
    let s = Scheduler::new(limits(10, 2, 100));
    let g = Gauge::default();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..5 {
        let g = g.clone();
        handles.push(
            s.submit(key(&format!("p{i}"), "busy"), move |_| async move { g.hold(Duration::from_secs(10)).await })
                .unwrap(),
        );
    }
    let o = order.clone();
    let other = s
        .submit(key("x", "free"), move |_| async move {
            o.lock().unwrap().push(tokio::time::Instant::now());
        })
        .unwrap();
    let start = tokio::time::Instant::now();
    other.wait().await.unwrap();
    assert!(order.lock().unwrap()[0] - start < Duration::from_secs(1), "a saturated host blocked another host");
    for h in handles {
        h.wait().await.unwrap();
    }
    assert_eq!(g.max(), 2);
}

#[tokio::test(start_paused = true)]
async fn one_job_per_pair_in_submit_order() {
    let s = Scheduler::new(limits(10, 10, 100));
    let g = Gauge::default();
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let (g, o) = (g.clone(), order.clone());
            s.submit(key("web", "h1"), move |_| async move {
                o.lock().unwrap().push(i);
                g.hold(Duration::from_millis(100)).await;
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().await.unwrap();
    }
    assert_eq!(g.max(), 1);
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn full_queue_is_refused_as_temporary() {
    let s = Scheduler::new(limits(1, 1, 2));
    let _running = s.submit(key("a", "h"), |_| sleep(Duration::from_secs(5))).unwrap();
    let _q1 = s.submit(key("b", "h"), |_| sleep(Duration::from_secs(5))).unwrap();
    let _q2 = s.submit(key("c", "h"), |_| sleep(Duration::from_secs(5))).unwrap();
    let err = s.submit(key("d", "h"), |_| async {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QueueFull);
    assert!(err.is_temporary());
    assert!(err.to_string().contains("queue is full (2 jobs waiting)"), "{err}");
    assert_eq!(s.stats().queued, 2);
    assert_eq!(s.stats().running, 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_before_start_never_runs() {
    let s = Scheduler::new(limits(1, 1, 10));
    let ran = Arc::new(AtomicUsize::new(0));
    let first = s.submit(key("a", "h"), |_| sleep(Duration::from_secs(1))).unwrap();
    let r = ran.clone();
    let second = s
        .submit(key("b", "h"), move |_| async move {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    second.cancel();
    assert_eq!(second.wait().await.unwrap_err(), JobError::Cancelled);
    first.wait().await.unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_while_running_fires_the_token() {
    let s = Scheduler::new(limits(1, 1, 10));
    let h = s
        .submit(key("a", "h"), |ctx: JobContext| async move {
            ctx.run_until_cancelled(sleep(Duration::from_secs(3600))).await.map(|_| ()).unwrap_err()
        })
        .unwrap();
    sleep(Duration::from_millis(10)).await;
    h.cancel();
    assert_eq!(h.wait().await.unwrap(), CancelReason::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn timeout_counts_run_time_only() {
    let s = Scheduler::new(Limits { job_timeout: Some(Duration::from_secs(10)), ..limits(1, 1, 10) });
    let blocker = s.submit(key("a", "h"), |_| sleep(Duration::from_secs(30))).unwrap();
    let start = tokio::time::Instant::now();
    let h = s
        .submit(key("b", "h"), move |ctx: JobContext| async move {
            let began = tokio::time::Instant::now();
            let reason = ctx.run_until_cancelled(sleep(Duration::from_secs(3600))).await.unwrap_err();
            (began, tokio::time::Instant::now(), reason)
        })
        .unwrap();
    blocker.wait().await.unwrap();
    let (began, ended, reason) = h.wait().await.unwrap();
    assert!(began - start >= Duration::from_secs(30), "it waited for the blocker");
    assert_eq!(ended - began, Duration::from_secs(10), "the timeout counts from the start of the run");
    assert_eq!(reason, CancelReason::TimedOut(Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_reported_and_frees_the_slot() {
    let s = Scheduler::new(limits(1, 1, 10));
    let bad = s.submit(key("a", "h"), |_| async { panic!("boom") }).unwrap();
    let good = s.submit(key("a", "h"), |_| async { 7 }).unwrap();
    assert_eq!(bad.wait().await.unwrap_err(), JobError::Panicked("boom".into()));
    assert_eq!(good.wait().await.unwrap(), 7);
    assert_eq!(s.stats(), Stats::default());
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_quick_jobs_and_cancels_slow_ones() {
    let s = Scheduler::new(limits(4, 4, 10));
    let quick = s.submit(key("q", "h"), |_| sleep(Duration::from_secs(1))).unwrap();
    let slow = s
        .submit(key("s", "h"), |ctx: JobContext| async move {
            ctx.run_until_cancelled(sleep(Duration::from_secs(3600))).await.unwrap_err()
        })
        .unwrap();
    sleep(Duration::from_millis(1)).await;
    let report = s.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report, ShutdownReport { finished: 1, cancelled: 1, dropped: 0 });
    quick.wait().await.unwrap();
    assert_eq!(slow.wait().await.unwrap(), CancelReason::Shutdown);
    let err = s.submit(key("late", "h"), |_| async {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_queued_jobs() {
    let queued_sched = Scheduler::new(limits(1, 1, 10));
    let _busy = queued_sched.submit(key("a", "h"), |_| sleep(Duration::from_secs(2))).unwrap();
    let queued = queued_sched.submit(key("b", "h"), |_| async {}).unwrap();
    let report = queued_sched.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report, ShutdownReport { finished: 1, cancelled: 0, dropped: 1 });
    assert_eq!(queued.wait().await.unwrap_err(), JobError::ShutDown);
}
