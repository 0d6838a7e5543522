//! Functions that change or order by labels: `label_replace`, `label_join`,
//! `sort_by_label`, `sort_by_label_desc`.

use std::cmp::Ordering;

use augur_storage::{Labels, METRIC_NAME};
use promql_parser::parser::Expr;

use super::string_arg;
use crate::error::{exec_err, Error, Result};
use crate::eval::{merge_same_labels, Ev, Val};

pub(crate) fn call(ev: &Ev<'_>, name: &str, args: &[&Expr]) -> Result<Option<Val>> {
    Ok(Some(match name {
        "label_replace" => {
            let dst = string_arg(args[1])?;
            let repl = string_arg(args[2])?;
            let src = string_arg(args[3])?;
            let re = string_arg(args[4])?;
            let regex = augur_storage::anchored_go_regex(&re)
                .map_err(|_| exec_err!("invalid regular expression in label_replace(): {re}"))?;
            if !ev.ctx.label_name_ok(&dst) {
                return Err(exec_err!(
                    "invalid destination label name in label_replace(): {dst}"
                ));
            }
            let mut series = ev.eval_vector(args[0])?;
            for s in &mut series {
                let value = s.labels.get(&src).unwrap_or("");
                let Some(caps) = regex.captures(value) else {
                    continue;
                };
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                s.labels = set_label(&s.labels, &dst, &res)?;
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
            Val::Vector(merge_same_labels(series)?)
        }
        "label_join" => {
            let dst = string_arg(args[1])?;
            let sep = string_arg(args[2])?;
            let mut srcs = Vec::new();
            for a in &args[3..] {
                let src = string_arg(a)?;
                if !ev.ctx.label_name_ok(&src) {
                    return Err(exec_err!(
                        "invalid source label name in label_join(): {src}"
                    ));
                }
                srcs.push(src);
            }
            if !ev.ctx.label_name_ok(&dst) {
                return Err(exec_err!(
                    "invalid destination label name in label_join(): {dst}"
                ));
            }
            let mut series = ev.eval_vector(args[0])?;
            for s in &mut series {
                let joined = srcs
                    .iter()
                    .map(|l| s.labels.get(l).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(&sep);
                s.labels = set_label(&s.labels, &dst, &joined)?;
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
            Val::Vector(merge_same_labels(series)?)
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut names = Vec::new();
            for a in &args[1..] {
                names.push(string_arg(a)?);
            }
            let mut series = ev.eval_vector(args[0])?;
            let desc = name == "sort_by_label_desc";
            series.sort_by(|a, b| {
                let mut ord = Ordering::Equal;
                for n in &names {
                    ord = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if ord != Ordering::Equal {
                        break;
                    }
                }
                if ord == Ordering::Equal {
                    ord = a.labels.cmp(&b.labels);
                }
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
            Val::Vector(series)
        }
        _ => return Ok(None),
    }))
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
fn set_label(labels: &Labels, name: &str, value: &str) -> Result<Labels> {
    let pairs = labels
        .iter()
        .filter(|l| l.name != name)
        .map(|l| (l.name, l.value))
        .chain(std::iter::once((name, value)));
    Labels::new(pairs).map_err(|e| Error::Execution(e.to_string()))
}

/// Natural ("version") order of label values, as Prometheus's `sort_by_label` uses: runs of
/// digits compare by numeric value.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let ta = trim_zeros(da);
                let tb = trim_zeros(db);
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}
