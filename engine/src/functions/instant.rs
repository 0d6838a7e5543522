//! Functions of instant vectors and scalars: element-wise math (`abs` … `atanh`, `clamp*`,
//! `round`, `sgn`), time and date (`time`, `timestamp`, `start_timestamp`, `hour`,
//! `day_of_week`, …), `sort*`, `scalar`, `vector`, `absent`, and the query-context functions `start()`, `end()`,
//! `range()`, `step()`.

use augur_storage::{Labels, Sample};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;

use super::{cmp_nan_last, unwrap_parens};
use crate::error::Result;
use crate::eval::{build_labels, Ev, VSeries, Val};
use crate::rewrite::EXT_LABEL;

/// Evaluates `name` if it is one of this family's functions; `None` otherwise.
pub(crate) fn call(ev: &Ev<'_>, name: &str, args: &[&Expr]) -> Result<Option<Val>> {
    let n = ev.grid.len();
    let secs = |t: i64| t as f64 / 1000.0;
    let val = match name {
        "time" => Val::Scalar(ev.grid.times().map(secs).collect()),
        "pi" => Val::Scalar(vec![std::f64::consts::PI; n]),
        "start" => Val::Scalar(vec![secs(ev.ctx.query_start); n]),
        "end" => Val::Scalar(vec![secs(ev.ctx.query_end); n]),
        "range" => Val::Scalar(vec![secs(ev.ctx.query_end - ev.ctx.query_start); n]),
        "step" => Val::Scalar(vec![secs(ev.ctx.step); n]),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(args[0])?;
            let b = ev.eval_scalar(args[1])?;
            let f = if name == "min_of" { go_min } else { go_max };
            Val::Scalar(a.into_iter().zip(b).map(|(a, b)| f(a, b)).collect())
        }
        "vector" => {
            let v = ev.eval_scalar(args[0])?;
            let points: Vec<Sample> = ev
                .grid
                .times()
                .zip(v)
                .map(|(t, v)| Sample::new(t, v))
                .collect();
            ev.ctx.hold(points.len())?;
            Val::Vector(vec![VSeries::new(Labels::default(), points)])
        }
        "scalar" => {
            let series = ev.eval_vector(args[0])?;
            let mut out = vec![f64::NAN; n];
            let mut count = vec![0u32; n];
            for s in &series {
                for p in &s.points {
                    let i = ev.grid.index(p.t);
                    count[i] += 1;
                    out[i] = if count[i] == 1 { p.v } else { f64::NAN };
                }
            }
            Val::Scalar(out)
        }
        "absent" => {
            let Val::Vector(series) = ev.eval(args[0])? else {
                return Err(crate::error::exec_err!("expected instant vector"));
            };
            let mut present = vec![false; n];
            for s in &series {
                for t in s
                    .points
                    .iter()
                    .map(|p| p.t)
                    .chain(s.hists.iter().map(|h| h.t))
                {
                    present[ev.grid.index(t)] = true;
                }
            }
            let points: Vec<Sample> = (0..n)
                .filter(|i| !present[*i])
                .map(|i| Sample::new(ev.grid.ts(i), 1.0))
                .collect();
            if points.is_empty() {
                Val::Vector(Vec::new())
            } else {
                Val::Vector(vec![VSeries::new(absent_labels(args[0]), points)])
            }
        }
        "timestamp" => {
            let mut series = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ev.vector_selector(vs, true)?,
                other => {
                    let mut s = ev.eval_vector(other)?;
                    for p in s.iter_mut().flat_map(|s| s.points.iter_mut()) {
                        p.v = p.t as f64 / 1000.0;
                    }
                    s
                }
            };
            series.iter_mut().for_each(|s| s.drop_name = true);
            Val::Vector(series)
        }
        "start_timestamp" => {
            // Only a selector's samples carry start timestamps: of any other expression the
            // result is empty, as in Prometheus (the argument is still evaluated, for errors).
            let mut series = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ev.start_timestamps(vs)?,
                other => {
                    ev.eval_vector(other)?;
                    Vec::new()
                }
            };
            series.iter_mut().for_each(|s| s.drop_name = true);
            Val::Vector(series)
        }
        "sort" | "sort_desc" => {
            let mut series = ev.eval_vector(args[0])?;
            let desc = name == "sort_desc";
            series.sort_by(|a, b| cmp_nan_last(a.points[0].v, b.points[0].v, desc));
            Val::Vector(series)
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let f = date_fn(name);
            if args.is_empty() {
                let points = ev
                    .grid
                    .times()
                    .map(|t| Sample::new(t, f(t.div_euclid(1000))))
                    .collect();
                Val::Vector(vec![VSeries::new(Labels::default(), points)])
            } else {
                let mut series = ev.eval_vector(args[0])?;
                for s in &mut series {
                    s.drop_name = true;
                    for p in &mut s.points {
                        // Go's int64(f): NaN and out-of-range values give the minimum.
                        let secs = if p.v.is_nan() || p.v.abs() >= 9.2e18 {
                            i64::MIN
                        } else {
                            p.v.trunc() as i64
                        };
                        p.v = f(secs);
                    }
                }
                Val::Vector(series)
            }
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let mut series = ev.eval_vector(args[0])?;
            let a = ev.eval_scalar(args[1])?;
            let b = if name == "clamp" {
                Some(ev.eval_scalar(args[2])?)
            } else {
                None
            };
            for s in &mut series {
                s.drop_name = true;
                s.points.retain_mut(|p| {
                    let i = ev.grid.index(p.t);
                    let (lo, hi) = match name {
                        "clamp" => (a[i], b.as_ref().unwrap()[i]),
                        "clamp_min" => (a[i], f64::INFINITY),
                        _ => (f64::NEG_INFINITY, a[i]),
                    };
                    if hi < lo {
                        return false;
                    }
                    p.v = go_max(lo, go_min(hi, p.v));
                    true
                });
            }
            series.retain(|s| !s.points.is_empty());
            Val::Vector(series)
        }
        "round" => {
            let mut series = ev.eval_vector(args[0])?;
            let to = match args.get(1) {
                Some(a) => ev.eval_scalar(a)?,
                None => vec![1.0; n],
            };
            for s in &mut series {
                s.drop_name = true;
                for p in &mut s.points {
                    let inv = 1.0 / to[ev.grid.index(p.t)];
                    p.v = (p.v * inv + 0.5).floor() / inv;
                }
            }
            Val::Vector(series)
        }
        _ => {
            let Some(f) = math_fn(name) else {
                return Ok(None);
            };
            let mut series = ev.eval_vector(args[0])?;
            for s in &mut series {
                s.drop_name = true;
                s.points.iter_mut().for_each(|p| p.v = f(p.v));
            }
            Val::Vector(series)
        }
    };
    Ok(Some(val))
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// The labels `absent(x{…})` reports: the selector's equality matchers (a label matched
/// more than once, or by another operator, is left out).
pub(crate) fn absent_labels(arg: &Expr) -> Labels {
    let vs = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut set: Vec<(&str, &str)> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == augur_storage::METRIC_NAME || m.name == EXT_LABEL {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !has.contains(&m.name.as_str()) {
            set.push((&m.name, &m.value));
            has.push(&m.name);
        } else {
            removed.push(&m.name);
        }
    }
    build_labels(set.into_iter().filter(|(n, _)| !removed.contains(n)))
}

/// Days since the Unix epoch to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A UTC calendar field of a Unix time in seconds.
fn date_fn(name: &str) -> fn(i64) -> f64 {
    match name {
        "day_of_month" => |s| civil(s.div_euclid(86_400)).2 as f64,
        "day_of_week" => |s| (s.div_euclid(86_400) + 4).rem_euclid(7) as f64,
        "day_of_year" => |s| {
            let (y, m, d) = civil(s.div_euclid(86_400));
            ((1..m).map(|mm| days_in_month(y, mm)).sum::<u32>() + d) as f64
        },
        "days_in_month" => |s| {
            let (y, m, _) = civil(s.div_euclid(86_400));
            days_in_month(y, m) as f64
        },
        "hour" => |s| (s.rem_euclid(86_400) / 3600) as f64,
        "minute" => |s| (s.rem_euclid(3600) / 60) as f64,
        "month" => |s| civil(s.div_euclid(86_400)).1 as f64,
        _ => |s| civil(s.div_euclid(86_400)).0 as f64,
    }
}

/// A time in milliseconds as Go's `time.Unix(ms/1000, 0).UTC().Format(time.RFC3339)`.
pub(crate) fn rfc3339_seconds(ms: i64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let day = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// A float as Go's `%g` prints it (shortest digits; exponent form below 1e-4 and from 1e21).
pub(crate) fn go_g(f: f64) -> String {
    let a = f.abs();
    if a.is_finite() && a != 0.0 && !(1e-4..1e21).contains(&a) {
        crate::GoExp::lower(f).to_string()
    } else {
        crate::GoFloat(f).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_seconds_reads_like_go() {
        assert_eq!(rfc3339_seconds(3_000_000), "1970-01-01T00:50:00Z");
        assert_eq!(rfc3339_seconds(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }
}
