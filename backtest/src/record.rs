//! The replay's fast path for recording rules whose labels hold no templates: a block of slots
//! is written straight from one range query's series, with the outcome `Group::eval` gives
//! slot by slot, without building a label map per sample.
//!
//! Per slot, as `RecordingRule::eval` and `Group::write` decide it:
//! - the output labels of a sample are its labels with `__name__` set to the rule's name and the
//!   rule's labels set (an empty value removes the label);
//! - two samples with the same output labels fail the slot ("vector contains metrics with the
//!   same labelset after applying rule labels"); so does a sample count above the group's
//!   `limit` ("exceeded limit of L with N series"), checked after; a failed slot writes
//!   nothing and keeps the previous series (no staleness markers);
//! - a successful slot writes every sample, and a staleness marker for each series written at
//!   the previous successful slot and missing now.
//!
//! The replay test checks this path against the server's own slot-by-slot evaluation.

use std::collections::{BTreeMap, HashMap, HashSet};

use augur_storage::{Labels, Sample, Series, STALE_NAN};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::overlay::Overlay;
use crate::replay::RuleReport;

/// The rule's state across blocks.
#[derive(Debug, Default)]
pub struct RecordState {
    /// Output series written at the latest successful slot.
    prev: HashSet<Labels, Xxh3DefaultBuilder>,
    /// Output labels by input labels.
    out: HashMap<Labels, Result<Labels, String>, Xxh3DefaultBuilder>,
}

/// Whether a recording rule's labels allow the fast path (no templates).
pub fn eligible(labels: &BTreeMap<String, String>) -> bool {
    !labels.values().any(|v| v.contains("{{"))
}

fn output_labels(
    name: &str,
    rule_labels: &BTreeMap<String, String>,
    input: &Labels,
) -> Result<Labels, String> {
    let mut pairs: Vec<(&str, &str)> = input
        .iter()
        .filter(|l| l.name != "__name__" && !rule_labels.contains_key(l.name))
        .map(|l| (l.name, l.value))
        .collect();
    pairs.extend(
        rule_labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    pairs.push(("__name__", name));
    Labels::new(pairs).map_err(|e| format!("invalid labels in rule output: {e}"))
}

/// What one block's evaluation gave: series with points at (some of) the slot times `qts`, or
/// per slot an error that failed it.
#[derive(Debug)]
pub struct BlockInput {
    pub qts: Vec<i64>,
    pub series: Vec<Series>,
    pub errors: Vec<Option<String>>,
}

/// Writes one block of a recording rule into the overlay and counts its slots in `rr`.
pub fn write_block(
    overlay: &Overlay,
    name: &str,
    rule_labels: &BTreeMap<String, String>,
    limit: usize,
    input: BlockInput,
    st: &mut RecordState,
    rr: &mut RuleReport,
) {
    let BlockInput {
        qts,
        series,
        mut errors,
    } = input;
    let n = qts.len();
    // Each input series' points as (slot, value), and its output labels.
    let mut count = vec![0usize; n];
    let mut groups: HashMap<Labels, Vec<Vec<(usize, f64)>>, Xxh3DefaultBuilder> =
        HashMap::default();
    for s in series {
        let points: Vec<(usize, f64)> = s
            .samples
            .iter()
            .filter_map(|p| qts.binary_search(&p.t).ok().map(|k| (k, p.v)))
            .collect();
        for &(k, _) in &points {
            count[k] += 1;
        }
        let out = st
            .out
            .entry(s.labels)
            .or_insert_with_key(|l| output_labels(name, rule_labels, l));
        match out {
            Ok(l) => groups.entry(l.clone()).or_default().push(points),
            Err(e) => {
                for &(k, _) in &points {
                    errors[k].get_or_insert_with(|| e.clone());
                }
            }
        }
    }
    for members in groups.values().filter(|m| m.len() > 1) {
        let mut seen = vec![0u8; n];
        for m in members {
            for &(k, _) in m {
                seen[k] += 1;
                if seen[k] == 2 {
                    errors[k].get_or_insert_with(|| {
                        "vector contains metrics with the same labelset after applying rule labels"
                            .into()
                    });
                }
            }
        }
    }
    if limit > 0 {
        for (k, &c) in count.iter().enumerate() {
            if c > limit {
                errors[k]
                    .get_or_insert_with(|| format!("exceeded limit of {limit} with {c} series"));
            }
        }
    }
    rr.evaluations += n as u64;
    for e in errors.iter().flatten() {
        rr.failures += 1;
        if rr.first_error.is_none() {
            rr.first_error = Some(e.clone());
        }
    }
    let ok: Vec<bool> = errors.iter().map(Option::is_none).collect();

    // Series written before this block that it no longer has: a marker at its first good slot.
    let gone: Vec<Labels> = st
        .prev
        .iter()
        .filter(|l| !groups.contains_key(*l))
        .cloned()
        .collect();
    if let Some(k) = ok.iter().position(|&o| o) {
        for l in gone {
            overlay.append_series(&l, &[Sample::new(qts[k], STALE_NAN)]);
            st.prev.remove(&l);
        }
    }
    let mut values: Vec<Option<f64>> = vec![None; n];
    let mut out: Vec<Sample> = Vec::new();
    for (labels, members) in groups {
        values.iter_mut().for_each(|v| *v = None);
        for m in &members {
            for &(k, v) in m {
                values[k] = Some(v);
            }
        }
        let mut had = st.prev.contains(&labels);
        out.clear();
        for k in (0..n).filter(|&k| ok[k]) {
            match values[k] {
                Some(v) => {
                    out.push(Sample::new(qts[k], v));
                    had = true;
                }
                None if had => {
                    out.push(Sample::new(qts[k], STALE_NAN));
                    had = false;
                }
                None => {}
            }
        }
        overlay.append_series(&labels, &out);
        if had {
            st.prev.insert(labels);
        } else {
            st.prev.remove(&labels);
        }
    }
}
