//! The notifier: queues the alerts rules hand it and delivers them to every configured
//! Alertmanager, as Prometheus's `notifier` package does.
//!
//! Flow: [`notify_func`] turns a rule's alerts into [`NotifierAlert`]s (`startsAt` = when the
//! alert fired, `endsAt` = its resolution time or `ValidUntil`, `generatorURL` = the external
//! URL's table link for the expression). [`Notifier::send`] adds external labels (an alert's
//! own label wins), applies `alerting.alert_relabel_configs`, then each Alertmanager set's
//! `alert_relabel_configs`, and appends the result to the queue of every Alertmanager of the
//! set. Each Alertmanager has its own queue and its own sending thread, so a slow or dead one
//! delays no other, and [`Notifier::send`] never waits for the network: rule evaluation is never
//! blocked by delivery.
//!
//! Per Alertmanager (Prometheus 3's send loops):
//! - the queue holds at most `queue_capacity` alerts; when full, the oldest go first and are
//!   counted as dropped;
//! - batches of at most `max_batch` alerts are sent one at a time, oldest first;
//! - a failed batch is counted (errors and dropped) and not retried: rules re-send firing
//!   alerts every resend delay and resolved ones for 15 minutes, which is the retry;
//! - the first failure of a streak is logged as an error, the rest at debug level, and the
//!   recovery is logged once;
//! - when stopped, the queue is sent first if so configured, until a batch fails; what is
//!   left is counted as dropped.
//!
//! The wire format and HTTP live in the `api` crate behind [`Transport`]; this module knows no
//! HTTP or JSON.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::alerting::Alert;
use crate::group::NotifyFunc;
use crate::relabel::{self, Relabel};

/// An alert as Alertmanager receives it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
}

/// Delivers one batch of alerts to one Alertmanager endpoint.
///
/// Implementations block the calling (sending) thread until the endpoint answered or the
/// target's timeout passed; `Err` is a one-line reason for the log.
pub trait Transport: Send + Sync + std::fmt::Debug {
    fn send(&self, url: &str, alerts: &[Arc<NotifierAlert>]) -> Result<(), String>;
}

/// One `alerting.alertmanagers` entry, resolved to endpoints.
#[derive(Debug, Clone)]
pub struct AlertmanagerSet {
    /// Identity of the entry's configuration: on [`Notifier::apply`], endpoints of a set with
    /// an unchanged key keep their queue, thread and counters.
    pub key: String,
    /// Endpoint URLs alerts are posted to (`scheme://address/path_prefix/api/v2/alerts`).
    pub urls: Vec<String>,
    /// Endpoints the entry's `relabel_configs` dropped (listed, never sent to).
    pub dropped_urls: Vec<String>,
    /// The entry's `alert_relabel_configs`, applied after the global ones.
    pub alert_relabel: Vec<Relabel>,
    pub transport: Arc<dyn Transport>,
}

/// Tuning of the queues.
#[derive(Debug, Clone, Copy)]
pub struct NotifierOptions {
    /// Alerts queued per Alertmanager (Prometheus's `--alertmanager.notification-queue-capacity`).
    pub queue_capacity: usize,
    /// Alerts per request.
    pub max_batch: usize,
    /// On [`Notifier::stop`] and for removed Alertmanagers, send what is queued first
    /// (Prometheus's `--alertmanager.drain-notification-queue-on-shutdown`).
    pub drain_on_shutdown: bool,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: 10_000,
            max_batch: 256,
            drain_on_shutdown: true,
        }
    }
}

/// Upper bounds of the latency histogram, in seconds (Prometheus's).
pub const LATENCY_BUCKETS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

/// Counters of one Alertmanager endpoint.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Alerts delivered.
    pub sent: AtomicU64,
    /// Alerts in batches that failed.
    pub errors: AtomicU64,
    /// Alerts given up: failed batches, queue overflow, undrained queues at stop.
    pub dropped: AtomicU64,
    pub queue_length: AtomicU64,
    latency: Mutex<Latency>,
}

/// Latency of successful requests: count per bucket (not cumulative; the last bucket holds
/// what exceeds every bound of [`LATENCY_BUCKETS`]), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl EndpointStats {
    fn observe(&self, seconds: f64) {
        let mut l = lock(&self.latency);
        let i = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        l.buckets[i] += 1;
        l.sum_seconds += seconds;
        l.count += 1;
    }

    pub fn latency(&self) -> Latency {
        lock(&self.latency).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct Queue {
    alerts: VecDeque<Arc<NotifierAlert>>,
    stopped: bool,
    /// Send what is queued before exiting once stopped.
    drain: bool,
}

/// One Alertmanager endpoint: its queue and the thread that empties it.
#[derive(Debug)]
struct SendLoop {
    url: String,
    queue: Mutex<Queue>,
    wake: Condvar,
    stats: Arc<EndpointStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl SendLoop {
    fn start(url: String, transport: Arc<dyn Transport>, opts: NotifierOptions) -> Arc<SendLoop> {
        let lp = Arc::new(SendLoop {
            url,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            stats: Arc::default(),
            thread: Mutex::new(None),
        });
        let worker = Arc::clone(&lp);
        let handle = std::thread::Builder::new()
            .name("augur-notify".into())
            .spawn(move || worker.run(transport.as_ref(), opts.max_batch))
            .expect("spawn a notifier thread");
        *lock(&lp.thread) = Some(handle);
        lp
    }

    fn add(&self, alerts: &[Arc<NotifierAlert>], capacity: usize) {
        let mut q = lock(&self.queue);
        if q.stopped {
            return;
        }
        let mut dropped = 0;
        let mut alerts = alerts;
        if alerts.len() > capacity {
            dropped += alerts.len() - capacity;
            alerts = &alerts[alerts.len() - capacity..];
        }
        let over = (q.alerts.len() + alerts.len()).saturating_sub(capacity);
        q.alerts.drain(..over);
        dropped += over;
        q.alerts.extend(alerts.iter().cloned());
        self.stats
            .queue_length
            .store(q.alerts.len() as u64, Ordering::Relaxed);
        drop(q);
        if dropped > 0 {
            tracing::warn!(alertmanager = %self.url, count = dropped, "alert notification queue full, dropping the oldest alerts");
            self.stats
                .dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        self.wake.notify_one();
    }

    /// Asks the thread to exit, after sending what is queued when `drain`.
    fn stop(&self, drain: bool) {
        let mut q = lock(&self.queue);
        q.stopped = true;
        q.drain = drain;
        drop(q);
        self.wake.notify_one();
    }

    fn join(&self) {
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }

    fn next_batch(&self, max: usize) -> Option<Vec<Arc<NotifierAlert>>> {
        let mut q = lock(&self.queue);
        loop {
            if q.stopped && (!q.drain || q.alerts.is_empty()) {
                let left = q.alerts.len() as u64;
                q.alerts.clear();
                self.stats.queue_length.store(0, Ordering::Relaxed);
                if left > 0 {
                    tracing::warn!(alertmanager = %self.url, count = left, "alert notification queue not drained on shutdown, dropping alerts");
                    self.stats.dropped.fetch_add(left, Ordering::Relaxed);
                }
                return None;
            }
            if !q.alerts.is_empty() {
                let n = q.alerts.len().min(max);
                let batch: Vec<_> = q.alerts.drain(..n).collect();
                self.stats
                    .queue_length
                    .store(q.alerts.len() as u64, Ordering::Relaxed);
                return Some(batch);
            }
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn run(&self, transport: &dyn Transport, max_batch: usize) {
        let mut failing = false;
        while let Some(batch) = self.next_batch(max_batch.max(1)) {
            let n = batch.len() as u64;
            let begin = Instant::now();
            match transport.send(&self.url, &batch) {
                Ok(()) => {
                    self.stats.observe(begin.elapsed().as_secs_f64());
                    self.stats.sent.fetch_add(n, Ordering::Relaxed);
                    if failing {
                        tracing::info!(alertmanager = %self.url, "alerts reach Alertmanager again");
                        failing = false;
                    }
                }
                Err(e) => {
                    self.stats.errors.fetch_add(n, Ordering::Relaxed);
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    // Draining at shutdown stops at the first failure, so an unreachable
                    // Alertmanager cannot hold shutdown for a timeout per queued batch.
                    {
                        let mut q = lock(&self.queue);
                        if q.stopped {
                            q.drain = false;
                        }
                    }
                    if failing {
                        tracing::debug!(alertmanager = %self.url, count = n, error = %e, "error sending alerts");
                    } else {
                        tracing::error!(
                            alertmanager = %self.url, count = n, error = %e,
                            "error sending alerts; check that Alertmanager is up at this address \
                             (further failures are logged at debug level until delivery recovers)"
                        );
                        failing = true;
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
struct SetState {
    key: String,
    dropped_urls: Vec<String>,
    alert_relabel: Vec<Relabel>,
    loops: Vec<Arc<SendLoop>>,
}

#[derive(Debug, Default)]
struct State {
    external_labels: BTreeMap<String, String>,
    alert_relabel: Vec<Relabel>,
    sets: Vec<SetState>,
    stopped: bool,
}

/// Delivers alerts to Alertmanagers; see the module documentation.
#[derive(Debug)]
pub struct Notifier {
    opts: NotifierOptions,
    state: Mutex<State>,
}

/// A snapshot of one endpoint's counters, for `/metrics` and `/api/v1/alertmanagers`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub stats: Arc<EndpointStats>,
}

impl Notifier {
    /// A notifier with no Alertmanagers; [`Notifier::apply`] configures it.
    pub fn new(opts: NotifierOptions) -> Notifier {
        Notifier {
            opts,
            state: Mutex::new(State::default()),
        }
    }

    pub fn options(&self) -> NotifierOptions {
        self.opts
    }

    /// Installs a configuration. Endpoints of sets whose key is unchanged keep their queues;
    /// endpoints no longer configured stop (draining first when so configured).
    pub fn apply(
        &self,
        external_labels: BTreeMap<String, String>,
        alert_relabel: Vec<Relabel>,
        sets: Vec<AlertmanagerSet>,
    ) {
        let mut st = lock(&self.state);
        if st.stopped {
            return;
        }
        let mut old = std::mem::take(&mut st.sets);
        let mut new_sets = Vec::with_capacity(sets.len());
        for set in sets {
            // Reuse the loops of the first old set with the same key.
            let mut reusable = old
                .iter_mut()
                .find(|s| s.key == set.key)
                .map(|s| std::mem::take(&mut s.loops))
                .unwrap_or_default();
            let mut loops = Vec::new();
            let mut urls = set.urls;
            let mut seen = std::collections::HashSet::new();
            urls.retain(|u| seen.insert(u.clone()));
            for url in urls {
                match reusable.iter().position(|l| l.url == url) {
                    Some(i) => loops.push(reusable.swap_remove(i)),
                    None => loops.push(SendLoop::start(url, Arc::clone(&set.transport), self.opts)),
                }
            }
            for lp in reusable {
                lp.stop(self.opts.drain_on_shutdown);
            }
            new_sets.push(SetState {
                key: set.key,
                dropped_urls: set.dropped_urls,
                alert_relabel: set.alert_relabel,
                loops,
            });
        }
        for s in old {
            for lp in s.loops {
                lp.stop(self.opts.drain_on_shutdown);
            }
        }
        st.external_labels = external_labels;
        st.alert_relabel = alert_relabel;
        st.sets = new_sets;
    }

    /// Queues `alerts` for every Alertmanager. Returns at once.
    pub fn send(&self, alerts: Vec<NotifierAlert>) {
        let st = lock(&self.state);
        if st.stopped || st.sets.is_empty() {
            return;
        }
        let global = relabel_alerts(alerts, &st.external_labels, &st.alert_relabel);
        if global.is_empty() {
            return;
        }
        let shared: Vec<Arc<NotifierAlert>> = global.iter().cloned().map(Arc::new).collect();
        for set in &st.sets {
            let batch = if set.alert_relabel.is_empty() {
                shared.clone()
            } else {
                relabel_alerts(global.clone(), &BTreeMap::new(), &set.alert_relabel)
                    .into_iter()
                    .map(Arc::new)
                    .collect()
            };
            if batch.is_empty() {
                continue;
            }
            for lp in &set.loops {
                lp.add(&batch, self.opts.queue_capacity);
            }
        }
    }

    /// The active endpoints, in configuration order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let st = lock(&self.state);
        st.sets
            .iter()
            .flat_map(|s| &s.loops)
            .map(|l| Endpoint {
                url: l.url.clone(),
                stats: Arc::clone(&l.stats),
            })
            .collect()
    }

    /// Endpoints dropped by `relabel_configs`.
    pub fn dropped_urls(&self) -> Vec<String> {
        let st = lock(&self.state);
        st.sets
            .iter()
            .flat_map(|s| s.dropped_urls.iter().cloned())
            .collect()
    }

    /// Stops every sending thread, after sending what is queued when so configured, and
    /// waits for them. Later `send`s are ignored.
    pub fn stop(&self) {
        let loops: Vec<Arc<SendLoop>> = {
            let mut st = lock(&self.state);
            st.stopped = true;
            st.sets.drain(..).flat_map(|s| s.loops).collect()
        };
        for lp in &loops {
            lp.stop(self.opts.drain_on_shutdown);
        }
        for lp in &loops {
            lp.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for s in &st.sets {
            for lp in &s.loops {
                lp.stop(false);
            }
        }
    }
}

/// Prometheus's `relabelAlerts`: external labels an alert lacks are added, then the steps
/// run; alerts a step drops, or left without labels, are removed.
fn relabel_alerts(
    alerts: Vec<NotifierAlert>,
    external_labels: &BTreeMap<String, String>,
    steps: &[Relabel],
) -> Vec<NotifierAlert> {
    alerts
        .into_iter()
        .filter_map(|mut a| {
            for (k, v) in external_labels {
                if a.labels.get(k).is_none_or(|x| x.is_empty()) {
                    a.labels.insert(k.clone(), v.clone());
                }
            }
            (relabel::process(&mut a.labels, steps) && !a.labels.is_empty()).then_some(a)
        })
        .collect()
}

/// The Alertmanager view of a rule's alert (Prometheus's `rules.SendAlerts`).
pub fn to_notifier_alert(a: &Alert, expr: &str, external_url: &str) -> NotifierAlert {
    NotifierAlert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.fired_at.unwrap_or(a.active_at),
        ends_at: a.resolved_at.unwrap_or(a.valid_until),
        generator_url: format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            external_url.trim_end_matches('/'),
            crate::template::query_escape(expr)
        ),
    }
}

/// The [`NotifyFunc`] rules call: converts their alerts and queues them on `notifier`.
pub fn notify_func(notifier: Arc<Notifier>, external_url: String) -> NotifyFunc {
    Arc::new(move |expr: &str, alerts: &[Alert]| {
        if alerts.is_empty() {
            return;
        }
        let out = alerts
            .iter()
            .map(|a| to_notifier_alert(a, expr, &external_url))
            .collect();
        notifier.send(out);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::RelabelConfig;
    use std::time::Duration;

    /// Polls `cond` until it holds or `timeout` passes.
    fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    /// Records what it is asked to deliver, or fails while `fail` is set. The notifier's
    /// queueing is under test here; delivery over HTTP is tested against a real Alertmanager
    /// in the api crate.
    #[derive(Debug, Default)]
    struct Recorder {
        got: Mutex<Vec<(String, Vec<String>)>>,
        fail: std::sync::atomic::AtomicBool,
        /// Held by the test to keep the sending thread blocked in `send`.
        gate: Mutex<()>,
    }

    impl Transport for Recorder {
        fn send(&self, url: &str, alerts: &[Arc<NotifierAlert>]) -> Result<(), String> {
            let _g = lock(&self.gate);
            if self.fail.load(Ordering::Relaxed) {
                return Err("connection refused".into());
            }
            let names = alerts
                .iter()
                .map(|a| a.labels["alertname"].clone())
                .collect();
            lock(&self.got).push((url.to_owned(), names));
            Ok(())
        }
    }

    fn alert(name: &str) -> NotifierAlert {
        NotifierAlert {
            labels: [("alertname".to_string(), name.to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: 1,
            ends_at: 2,
            generator_url: String::new(),
        }
    }

    fn set(key: &str, urls: &[&str], t: &Arc<Recorder>) -> AlertmanagerSet {
        AlertmanagerSet {
            key: key.into(),
            urls: urls.iter().map(|u| u.to_string()).collect(),
            dropped_urls: vec![],
            alert_relabel: vec![],
            transport: Arc::clone(t) as Arc<dyn Transport>,
        }
    }

    fn delivered(t: &Recorder) -> Vec<(String, Vec<String>)> {
        lock(&t.got).clone()
    }

    fn stats(n: &Notifier, url: &str) -> (u64, u64, u64, u64) {
        let e = n.endpoints().into_iter().find(|e| e.url == url).unwrap();
        let s = &e.stats;
        (
            s.sent.load(Ordering::Relaxed),
            s.errors.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.queue_length.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn every_alertmanager_gets_every_alert_in_batches() {
        let t = Arc::new(Recorder::default());
        let n = Notifier::new(NotifierOptions {
            max_batch: 2,
            ..Default::default()
        });
        n.apply(
            BTreeMap::new(),
            vec![],
            vec![set("a", &["u1", "u2", "u1"], &t)],
        );
        assert_eq!(n.endpoints().len(), 2, "duplicate URLs are one endpoint");
        let gate = lock(&t.gate);
        n.send(vec![alert("A"), alert("B"), alert("C")]);
        drop(gate);
        assert!(wait_until(Duration::from_secs(5), || stats(&n, "u1").0
            == 3
            && stats(&n, "u2").0 == 3));
        let mut got = delivered(&t);
        got.sort();
        // One thread may have taken a batch before the rest arrived; batches never exceed 2.
        assert!(got.iter().all(|(_, b)| b.len() <= 2));
        for url in ["u1", "u2"] {
            let names: Vec<String> = got
                .iter()
                .filter(|(u, _)| u == url)
                .flat_map(|(_, b)| b.clone())
                .collect();
            assert_eq!(names, ["A", "B", "C"], "{url} got {got:?}");
        }
        n.stop();
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts_them() {
        let t = Arc::new(Recorder::default());
        let n = Notifier::new(NotifierOptions {
            queue_capacity: 3,
            max_batch: 10,
            drain_on_shutdown: true,
        });
        n.apply(BTreeMap::new(), vec![], vec![set("a", &["u"], &t)]);
        // Block the sender on a first batch so the queue fills behind it.
        let gate = lock(&t.gate);
        n.send(vec![alert("first")]);
        assert!(wait_until(Duration::from_secs(5), || stats(&n, "u").3 == 0));
        n.send(vec![alert("a1"), alert("a2")]);
        n.send(vec![alert("a3"), alert("a4")]);
        assert_eq!(stats(&n, "u").2, 1, "one alert over capacity was dropped");
        // A batch larger than the queue keeps its newest alerts.
        n.send((0..5).map(|i| alert(&format!("b{i}"))).collect());
        assert_eq!(stats(&n, "u").2, 1 + 2 + 3);
        assert_eq!(stats(&n, "u").3, 3);
        drop(gate);
        assert!(wait_until(Duration::from_secs(5), || stats(&n, "u").0 == 4));
        let names: Vec<String> = delivered(&t).into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(names, ["first", "b2", "b3", "b4"]);
        n.stop();
    }

    #[test]
    fn failures_are_counted_and_delivery_resumes() {
        let t = Arc::new(Recorder::default());
        let n = Notifier::new(NotifierOptions::default());
        n.apply(BTreeMap::new(), vec![], vec![set("a", &["u"], &t)]);
        t.fail.store(true, Ordering::Relaxed);
        n.send(vec![alert("A"), alert("B")]);
        assert!(wait_until(Duration::from_secs(5), || stats(&n, "u").1 == 2));
        assert_eq!(stats(&n, "u"), (0, 2, 2, 0));
        t.fail.store(false, Ordering::Relaxed);
        n.send(vec![alert("C")]);
        assert!(wait_until(Duration::from_secs(5), || stats(&n, "u").0 == 1));
        assert_eq!(delivered(&t), [("u".to_string(), vec!["C".to_string()])]);
        n.stop();
    }

    #[test]
    fn external_labels_and_relabelling() {
        let t = Arc::new(Recorder::default());
        let n = Notifier::new(NotifierOptions::default());
        let step = |yaml: &str| {
            serde_yaml::from_str::<RelabelConfig>(yaml)
                .unwrap()
                .compile()
                .unwrap()
        };
        let mut only_b = set("b", &["ub"], &t);
        only_b.alert_relabel = vec![step("source_labels: [alertname]\nregex: B\naction: keep")];
        n.apply(
            [("region".to_string(), "eu".to_string())].into(),
            vec![step(
                "source_labels: [alertname]\nregex: Drop.*\naction: drop",
            )],
            vec![set("a", &["ua"], &t), only_b],
        );
        let mut own = alert("A");
        own.labels.insert("region".into(), "us".into());
        n.send(vec![own, alert("B"), alert("DropMe")]);
        assert!(wait_until(Duration::from_secs(5), || stats(&n, "ua").0
            == 2
            && stats(&n, "ub").0 == 1));
        let got = delivered(&t);
        assert!(
            got.contains(&("ua".into(), vec!["A".into(), "B".into()])),
            "{got:?}"
        );
        assert!(got.contains(&("ub".into(), vec!["B".into()])), "{got:?}");
        n.stop();
    }

    #[test]
    fn apply_keeps_unchanged_endpoints_and_stop_drains() {
        let t = Arc::new(Recorder::default());
        let n = Notifier::new(NotifierOptions::default());
        n.apply(BTreeMap::new(), vec![], vec![set("a", &["u1", "u2"], &t)]);
        let before = n.endpoints();
        n.apply(BTreeMap::new(), vec![], vec![set("a", &["u2", "u3"], &t)]);
        let after = n.endpoints();
        assert_eq!(
            after.iter().map(|e| e.url.as_str()).collect::<Vec<_>>(),
            ["u2", "u3"]
        );
        assert!(
            Arc::ptr_eq(&before[1].stats, &after[0].stats),
            "u2 kept its counters"
        );
        // A changed key is a new configuration: fresh endpoints.
        n.apply(BTreeMap::new(), vec![], vec![set("b", &["u2"], &t)]);
        assert!(!Arc::ptr_eq(&after[0].stats, &n.endpoints()[0].stats));
        let gate = lock(&t.gate);
        n.send(vec![alert("A")]);
        n.send(vec![alert("B")]);
        drop(gate);
        n.stop();
        let names: Vec<String> = delivered(&t).into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(names, ["A", "B"], "stop sent the queue first");
        n.send(vec![alert("late")]);
        assert!(n.endpoints().is_empty());
    }

    #[test]
    fn draining_stops_at_the_first_failure() {
        let t = Arc::new(Recorder::default());
        let opts = NotifierOptions {
            max_batch: 1,
            ..Default::default()
        };
        let lp = SendLoop::start("u".into(), Arc::clone(&t) as Arc<dyn Transport>, opts);
        t.fail.store(true, Ordering::Relaxed);
        let gate = lock(&t.gate);
        let alerts: Vec<_> = (0..5).map(|i| Arc::new(alert(&format!("a{i}")))).collect();
        lp.add(&alerts, 100);
        // The first batch is taken (and blocked in the transport) before the stop.
        assert!(wait_until(Duration::from_secs(5), || lp
            .stats
            .queue_length
            .load(Ordering::Relaxed)
            == 4));
        lp.stop(true);
        drop(gate);
        lp.join();
        // One batch (of one alert) was tried; the other four were dropped unsent.
        assert_eq!(lp.stats.errors.load(Ordering::Relaxed), 1);
        assert_eq!(lp.stats.dropped.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn rule_alerts_map_to_alertmanager_fields() {
        let a = Alert {
            state: crate::AlertState::Firing,
            labels: [("alertname".to_string(), "X".to_string())].into(),
            annotations: [("summary".to_string(), "s".to_string())].into(),
            value: 1.0,
            active_at: 1000,
            fired_at: Some(61_000),
            resolved_at: None,
            last_sent_at: Some(61_000),
            valid_until: 301_000,
            keep_firing_since: None,
        };
        let n = to_notifier_alert(&a, "rate(x[5m]) > 0.5", "http://h:9090/");
        assert_eq!((n.starts_at, n.ends_at), (61_000, 301_000));
        assert_eq!(
            n.generator_url,
            "http://h:9090/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0.5&g0.tab=1"
        );
        let resolved = Alert {
            resolved_at: Some(120_000),
            ..a
        };
        assert_eq!(to_notifier_alert(&resolved, "x", "").ends_at, 120_000);
    }
}
