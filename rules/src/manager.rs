//! The rule manager: loads rule files, runs each group on its own schedule, and reloads.
//!
//! Each group runs on its own thread (with a large stack: deeply nested rule expressions
//! recurse in the evaluator). The first evaluation happens at the group's next slot (see
//! [`Group::eval_timestamp`]); after that every `interval`. A group that falls behind skips
//! the slots it missed and counts them (`iterations_missed`) instead of piling evaluations up.
//!
//! A reload parses every file first. If any file has an error, nothing changes: the previous
//! groups keep running and the errors are kept for `/api/v1/rules` and `/metrics`. Otherwise
//! groups whose file and name are unchanged carry their alert state over, and series of
//! groups and rules that disappeared get staleness markers.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::file::{self, FileError, ParseOptions};
use crate::group::{lock, Group, GroupContext};

/// Stack size of group threads; matches the query API's.
const GROUP_STACK_BYTES: usize = 64 << 20;

/// Manager-wide defaults for groups that set none.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// `global.evaluation_interval`.
    pub default_interval_ms: i64,
    /// `global.rule_query_offset`.
    pub default_query_offset_ms: i64,
}

/// The outcome of the latest reload.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub success: bool,
    /// Unix ms of the latest reload attempt.
    pub at_ms: i64,
    pub errors: Vec<String>,
}

/// A running group: the group, its stop signal and its thread.
struct Running {
    group: Arc<Group>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// Runs rule groups.
pub struct Manager {
    cx: Mutex<Arc<GroupContext>>,
    opts: ManagerOptions,
    running: Mutex<Vec<Running>>,
    status: Mutex<ReloadStatus>,
    /// Whether alert state has been restored once (only the first load restores).
    restored: Mutex<bool>,
    /// Which record and label names rule files may use (the config's
    /// `metric_name_validation_scheme`).
    names: Mutex<augur_storage::NameScheme>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Manager {
    pub fn new(cx: GroupContext, opts: ManagerOptions) -> Manager {
        Manager {
            cx: Mutex::new(Arc::new(cx)),
            opts,
            running: Mutex::new(Vec::new()),
            status: Mutex::new(ReloadStatus {
                success: true,
                ..ReloadStatus::default()
            }),
            restored: Mutex::new(false),
            names: Mutex::new(augur_storage::NameScheme::default()),
        }
    }

    /// Sets the name scheme the next loads validate rule files with.
    pub fn set_name_scheme(&self, names: augur_storage::NameScheme) {
        *lock(&self.names) = names;
    }

    /// Loads `files` (already expanded from globs) and replaces the running groups. On any
    /// error nothing changes and every error is returned (and kept in [`Manager::status`]).
    pub fn update(&self, files: &[String]) -> Result<(), Vec<FileError>> {
        self.update_with(files, None)
    }

    /// Like [`Manager::update`], with new external labels and URL for templates (from a
    /// reloaded config); they take effect only if the update succeeds.
    pub fn update_with(
        &self,
        files: &[String],
        external: Option<(std::collections::BTreeMap<String, String>, String)>,
    ) -> Result<(), Vec<FileError>> {
        let mut specs = Vec::new();
        let mut errors = Vec::new();
        let opts = ParseOptions {
            names: *lock(&self.names),
            ..ParseOptions::default()
        };
        for f in files {
            match file::load(f, opts) {
                Ok(rf) => specs.extend(rf.groups),
                Err(e) => errors.extend(e),
            }
        }
        let now = now_ms();
        if !errors.is_empty() {
            *lock(&self.status) = ReloadStatus {
                success: false,
                at_ms: now,
                errors: errors.iter().map(ToString::to_string).collect(),
            };
            return Err(errors);
        }
        let mut restored = lock(&self.restored);
        let should_restore = !*restored;
        let new: Vec<Arc<Group>> = specs
            .iter()
            .map(|s| {
                Arc::new(Group::new(
                    s,
                    self.opts.default_interval_ms,
                    self.opts.default_query_offset_ms,
                    !should_restore,
                ))
            })
            .collect();
        let mut running = lock(&self.running);
        // Stop the old groups first so none evaluates while its state moves.
        for r in running.iter_mut() {
            stop(r);
        }
        for g in &new {
            if let Some(old) = running
                .iter()
                .find(|r| r.group.file == g.file && r.group.name == g.name)
            {
                g.take_state(&old.group);
            }
        }
        let cx = {
            let mut cx = lock(&self.cx);
            if let Some((labels, url)) = external {
                *cx = Arc::new(GroupContext {
                    external_labels: labels,
                    external_url: url,
                    ..(**cx).clone()
                });
            }
            cx.clone()
        };
        for r in running.iter() {
            r.group.mark_stale(now, &*cx.store);
        }
        *running = new
            .into_iter()
            .map(|g| start(g, cx.clone(), should_restore))
            .collect();
        *restored = true;
        *lock(&self.status) = ReloadStatus {
            success: true,
            at_ms: now,
            errors: Vec::new(),
        };
        Ok(())
    }

    /// The running groups, in file order.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        lock(&self.running)
            .iter()
            .map(|r| r.group.clone())
            .collect()
    }

    /// How the latest reload went.
    pub fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    /// Stops every group and waits for their threads.
    pub fn stop(&self) {
        for r in lock(&self.running).iter_mut() {
            stop(r);
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stop(r: &mut Running) {
    {
        let (flag, cv) = &*r.stop;
        *lock(flag) = true;
        cv.notify_all();
    }
    if let Some(t) = r.thread.take() {
        let _ = t.join();
    }
}

fn start(group: Arc<Group>, cx: Arc<GroupContext>, should_restore: bool) -> Running {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let thread = {
        let group = group.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("rules:{}", group.name))
            .stack_size(GROUP_STACK_BYTES)
            .spawn(move || run(&group, &cx, &stop, should_restore))
            .map_err(|e| tracing::error!(error = %e, "cannot start rule group thread"))
            .ok()
    };
    Running {
        group,
        stop,
        thread,
    }
}

/// Sleeps until `until_ms` (wall clock) unless stopped; returns whether to go on.
fn sleep_until(until_ms: i64, stop: &(Mutex<bool>, Condvar)) -> bool {
    let (flag, cv) = stop;
    let mut stopped = lock(flag);
    loop {
        if *stopped {
            return false;
        }
        let left = until_ms - now_ms();
        if left <= 0 {
            return true;
        }
        stopped = cv
            .wait_timeout(stopped, Duration::from_millis(left as u64))
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn run(group: &Group, cx: &GroupContext, stop: &(Mutex<bool>, Condvar), should_restore: bool) {
    let interval = group.interval_ms;
    let mut ts = group.eval_timestamp(now_ms()) + interval;
    if !sleep_until(ts, stop) {
        return;
    }
    group.eval(ts, cx);
    if should_restore {
        group.restore(now_ms(), cx);
    }
    loop {
        ts += interval;
        if !sleep_until(ts, stop) {
            return;
        }
        let behind = now_ms() - ts;
        if behind >= interval {
            let missed = behind / interval;
            group
                .iterations_missed
                .fetch_add(missed as u64, std::sync::atomic::Ordering::Relaxed);
            ts += missed * interval;
        }
        group.eval(ts, cx);
    }
}

/// Wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
