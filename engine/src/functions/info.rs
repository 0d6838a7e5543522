//! `info(v [, {data-label-selector}])`: adds the data labels of info series (`target_info`
//! by default) that share the identifying labels `instance` and `job` with each series of
//! `v`, as Prometheus 3's experimental `info` function does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use augur_storage::{Labels, MatchOp, Matcher, METRIC_NAME};
use promql_parser::parser::Expr;

use super::{unwrap_parens, Collector};
use crate::error::{exec_err, Error, Result};
use crate::eval::aggregate::Cursors;
use crate::eval::selector::{offset_ms, to_matcher};
use crate::eval::{Ev, Val};
use crate::rewrite::EXT_LABEL;

const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// An info series' match signature: its name, `instance` and `job`.
type Sig = (String, Option<String>, Option<String>);

/// The `@` and offset of the first vector selector in `e` (pre-order), with the offsets of
/// subqueries around it.
fn first_selector_timing(ev: &Ev<'_>, e: &Expr, outer_offset: i64) -> Option<(Option<i64>, i64)> {
    match e {
        Expr::VectorSelector(vs) => Some((ev.at_ms(&vs.at), outer_offset + offset_ms(&vs.offset))),
        Expr::MatrixSelector(ms) => {
            Some((ev.at_ms(&ms.vs.at), outer_offset + offset_ms(&ms.vs.offset)))
        }
        Expr::Subquery(sq) => {
            let (at, off) =
                first_selector_timing(ev, &sq.expr, outer_offset + offset_ms(&sq.offset))?;
            Some((at.or_else(|| ev.at_ms(&sq.at)), off))
        }
        Expr::Paren(p) => first_selector_timing(ev, &p.expr, outer_offset),
        Expr::Unary(u) => first_selector_timing(ev, &u.expr, outer_offset),
        Expr::Binary(b) => first_selector_timing(ev, &b.lhs, outer_offset)
            .or_else(|| first_selector_timing(ev, &b.rhs, outer_offset)),
        Expr::Aggregate(a) => a
            .param
            .as_deref()
            .and_then(|p| first_selector_timing(ev, p, outer_offset))
            .or_else(|| first_selector_timing(ev, &a.expr, outer_offset)),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .find_map(|a| first_selector_timing(ev, a, outer_offset)),
        _ => None,
    }
}

/// Prometheus's `effectiveInfoNameMatchers`.
fn effective_name_matchers(ms: Vec<Matcher>) -> Result<Vec<Matcher>> {
    if ms
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
    {
        return Ok(ms);
    }
    if !ms.is_empty() {
        let mut out = vec![Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+_info")?];
        out.extend(ms);
        return Ok(out);
    }
    Ok(vec![Matcher::equal(METRIC_NAME, "target_info")])
}

pub(crate) fn info(ev: &Ev<'_>, args: &[&Expr]) -> Result<Val> {
    let (at, offset) = first_selector_timing(ev, args[0], 0).unwrap_or((None, 0));
    let base = ev.eval_vector(args[0])?;
    // Data-label matchers by label name, from the second argument.
    let mut data: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
    let mut name_matchers = Vec::new();
    if let Some(sel) = args.get(1) {
        let Expr::VectorSelector(vs) = unwrap_parens(sel) else {
            return Err(exec_err!(
                "info: the second argument must be a label selector"
            ));
        };
        if let Some(n) = &vs.name {
            let m = Matcher::equal(METRIC_NAME, n.clone());
            data.entry(METRIC_NAME.into()).or_default().push(m.clone());
            name_matchers.push(m);
        }
        for m in &vs.matchers.matchers {
            if m.name == EXT_LABEL {
                continue;
            }
            let sm = to_matcher(m)?;
            if m.name == METRIC_NAME {
                name_matchers.push(sm.clone());
            }
            data.entry(m.name.clone()).or_default().push(sm);
        }
    } else {
        name_matchers.push(Matcher::equal(METRIC_NAME, "target_info"));
    }
    let effective = effective_name_matchers(name_matchers)?;
    let ignored: Vec<bool> = base
        .iter()
        .map(|s| {
            let name = s.labels.metric_name().unwrap_or("");
            effective.iter().all(|m| m.matches(name))
        })
        .collect();
    let mut id_values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (s, ign) in base.iter().zip(&ignored) {
        if *ign {
            continue;
        }
        for l in IDENTIFYING {
            if let Some(v) = s.labels.get(l) {
                id_values.entry(l).or_default().insert(v.to_owned());
            }
        }
    }
    let data_name: Vec<Matcher> = data.remove(METRIC_NAME).unwrap_or_default();
    let mut info_series = Vec::new();
    if !id_values.is_empty() {
        let mut matchers = Vec::new();
        for (name, vals) in &id_values {
            let re = vals
                .iter()
                .map(|v| regex::escape(v))
                .collect::<Vec<_>>()
                .join("|");
            matchers.push(Matcher::new(MatchOp::RegexMatch, *name, re)?);
        }
        for ms in data.values() {
            matchers.extend(ms.iter().cloned());
        }
        matchers.extend(effective_name_matchers(data_name)?);
        let refs: Vec<i64> = match at {
            Some(t) => vec![t - offset; ev.grid.len()],
            None => ev.grid.times().map(|t| t - offset).collect(),
        };
        let lookback = ev.ctx.settings.lookback;
        let (lo, hi) = (
            refs[0].min(refs[refs.len() - 1]),
            refs[0].max(refs[refs.len() - 1]),
        );
        let raw = ev.select_matchers(&matchers, lo - lookback + 1, hi)?;
        info_series = ev.instant_points(raw, &refs, |_, p| p.t as f64 / 1000.0)?;
    }
    // Signature of an info series: its name and identifying labels.
    let sig_of = |name: &str, l: &Labels| -> Sig {
        (
            name.to_owned(),
            l.get("instance").map(str::to_owned),
            l.get("job").map(str::to_owned),
        )
    };
    let info_names: BTreeSet<String> = info_series
        .iter()
        .filter_map(|s| s.labels.metric_name().map(str::to_owned))
        .collect();
    let info_sigs: Vec<_> = info_series
        .iter()
        .map(|s| sig_of(s.labels.metric_name().unwrap_or(""), &s.labels))
        .collect();
    let all_match_empty = data.values().flatten().all(|m| m.matches(""));
    let mut out = Collector::new();
    let mut bc = Cursors::new(&base);
    let mut ic = Cursors::new(&info_series);
    for t in ev.grid.times() {
        ev.ctx.check()?;
        let mut right: HashMap<&Sig, (usize, i64)> = HashMap::new();
        for (j, sig) in info_sigs.iter().enumerate() {
            let Some(orig) = ic.at(j, t) else { continue };
            let orig = (orig * 1000.0).round() as i64;
            match right.get(sig) {
                Some(&(k, existing)) if existing == orig => {
                    return Err(exec_err!(
                        "found duplicate series for info metric: existing {} @ {existing}, new {} @ {orig}",
                        crate::eval::labels_string(&info_series[k].labels),
                        crate::eval::labels_string(&info_series[j].labels)
                    ))
                }
                Some(&(_, existing)) if existing > orig => {}
                _ => {
                    right.insert(sig, (j, orig));
                }
            }
        }
        for (i, s) in base.iter().enumerate() {
            let Some(v) = bc.at(i, t) else { continue };
            if ignored[i] {
                out.push(&s.labels, s.drop_name, t, v)?;
                continue;
            }
            let mut added: BTreeMap<&str, &str> = BTreeMap::new();
            let mut seen = 0;
            for name in &info_names {
                let Some(&(j, _)) = right.get(&sig_of(name, &s.labels)) else {
                    continue;
                };
                seen += 1;
                for l in info_series[j].labels.iter() {
                    if l.name == METRIC_NAME {
                        continue;
                    }
                    if !data.is_empty() && !data.contains_key(l.name) {
                        continue;
                    }
                    if let Some(prev) = added.get(l.name) {
                        if *prev != l.value {
                            return Err(Error::Execution(format!("conflicting label: {}", l.name)));
                        }
                    }
                    if s.labels.get(l.name).is_some() {
                        continue;
                    }
                    added.insert(l.name, l.value);
                }
            }
            if seen == 0 && !all_match_empty {
                continue;
            }
            let labels = if added.is_empty() {
                s.labels.clone()
            } else {
                Labels::new(
                    s.labels
                        .iter()
                        .map(|l| (l.name, l.value))
                        .chain(added.iter().map(|(k, v)| (*k, *v))),
                )
                .map_err(|e| Error::Execution(e.to_string()))?
            };
            out.push(&labels, s.drop_name, t, v)?;
        }
    }
    Ok(Val::Vector(out.finish(ev)?))
}
