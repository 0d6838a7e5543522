//! The Numenta Anomaly Benchmark's files: `data/<category>/<name>.csv` (`timestamp,value`,
//! times `YYYY-MM-DD HH:MM:SS` in UTC) and `labels/combined_windows.json`.
//!
//! Each file becomes one series `nab_value{file="<category>/<name>"}` and one key of the
//! incidents. A row that repeats or steps back in time (daylight-saving artefacts) is moved to
//! 1 ms after the row before it, so every row keeps its value and its position.

use std::path::Path;

use augur_storage::{Labels, Sample};

use crate::error::{Error, Result};
use crate::incidents::{parse_time, Incidents};

/// The metric name of imported NAB series.
pub const METRIC: &str = "nab_value";
/// The label holding `<category>/<name>`.
pub const KEY_LABEL: &str = "file";

/// One NAB data file.
#[derive(Debug, Clone)]
pub struct NabFile {
    pub key: String,
    pub path: String,
    pub labels: Labels,
    /// (line, sample) per row, times strictly increasing.
    pub rows: Vec<(u32, Sample)>,
    /// Rows moved to keep times increasing.
    pub nudged: usize,
}

fn input(what: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Input {
        what: what.into(),
        message: message.into(),
    }
}

/// Reads one CSV file.
pub fn read_csv(path: &Path, key: &str) -> Result<NabFile> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| input(&name, format!("cannot read: {e}")))?;
    let mut rows: Vec<(u32, Sample)> = Vec::new();
    let mut nudged = 0;
    for (n, line) in text.lines().enumerate().skip(1) {
        let line_no = n + 1;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let at = |col: usize, m: String| input(format!("{name}:{line_no}:{col}"), m);
        let (ts, value) = line
            .split_once(',')
            .ok_or_else(|| at(1, "expected timestamp,value".into()))?;
        let t = parse_time(ts).ok_or_else(|| at(1, format!("invalid timestamp {ts:?}")))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| at(ts.len() + 2, format!("invalid value {value:?}")))?;
        let t = match rows.last() {
            Some((_, prev)) if t <= prev.t => {
                nudged += 1;
                prev.t + 1
            }
            _ => t,
        };
        rows.push((line_no as u32, Sample::new(t, v)));
    }
    let labels = Labels::new([("__name__", METRIC), (KEY_LABEL, key)])
        .map_err(|e| input(&name, e.to_string()))?;
    Ok(NabFile {
        key: key.to_owned(),
        path: name,
        labels,
        rows,
        nudged,
    })
}

/// Reads every data file under `dir/data` (sorted by key) and the labelled windows.
pub fn read_corpus(dir: &Path) -> Result<(Vec<NabFile>, Incidents)> {
    let data = dir.join("data");
    let mut paths = Vec::new();
    let categories = std::fs::read_dir(&data).map_err(|e| {
        input(
            data.display().to_string(),
            format!("cannot read the NAB data folder: {e}"),
        )
    })?;
    for cat in categories.flatten() {
        if !cat.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(cat.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "csv") {
                let key = format!(
                    "{}/{}",
                    cat.file_name().to_string_lossy(),
                    p.file_stem().unwrap_or_default().to_string_lossy()
                );
                paths.push((key, p));
            }
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(input(
            data.display().to_string(),
            "no CSV files under data/<category>/",
        ));
    }
    let files = paths
        .iter()
        .map(|(k, p)| read_csv(p, k))
        .collect::<Result<Vec<_>>>()?;
    let labels_path = dir.join("labels").join("combined_windows.json");
    let text = std::fs::read_to_string(&labels_path).map_err(|e| {
        input(
            labels_path.display().to_string(),
            format!("cannot read: {e}"),
        )
    })?;
    let mut incidents = Incidents::parse(&labels_path.display().to_string(), &text)?;
    // NAB keys name the file with its extension; ours drop it.
    incidents.windows = std::mem::take(&mut incidents.windows)
        .into_iter()
        .map(|(k, w)| (k.strip_suffix(".csv").unwrap_or(&k).to_owned(), w))
        .collect();
    Ok((files, incidents))
}
