//! Native histogram arithmetic with PromQL's semantics (those of Prometheus's
//! `FloatHistogram`): adding and subtracting histograms of different resolutions and zero
//! buckets, custom-bucket histograms with different bounds, scaling, counter-reset detection
//! and equality.
//!
//! A side of a histogram is handled as (absolute bucket index, count) pairs in increasing
//! index. Every result is compact, as Prometheus's operators return them: buckets with a zero
//! count are left out and each run of consecutive indexes is one span.

use augur_storage::histogram::{bound, Histogram, ResetHint, Span};

/// One side's buckets: (index, count), increasing index.
pub(crate) type Side = Vec<(i32, f64)>;

/// The buckets the spans name, with their absolute indexes.
pub(crate) fn side(spans: &[Span], counts: &[f64]) -> Side {
    let mut out = Vec::with_capacity(counts.len());
    let mut counts = counts.iter();
    let mut idx = 0i32;
    // Indexes wrap as Go's int32 arithmetic does (hostile spans must not panic).
    for (n, s) in spans.iter().enumerate() {
        idx = if n == 0 {
            s.offset
        } else {
            idx.wrapping_add(s.offset)
        };
        for _ in 0..s.length {
            let Some(&c) = counts.next() else {
                return out;
            };
            out.push((idx, c));
            idx = idx.wrapping_add(1);
        }
    }
    out
}

/// Spans and counts of a side, empty buckets left out.
fn spans_of(side: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    let (mut spans, mut counts) = (Vec::<Span>::new(), Vec::new());
    let mut end: Option<i32> = None;
    for &(i, c) in side {
        if c == 0.0 {
            continue;
        }
        match (end, spans.last_mut()) {
            (Some(e), Some(last)) if e == i => last.length += 1,
            _ => spans.push(Span {
                offset: end.map_or(i, |e| i - e),
                length: 1,
            }),
        }
        counts.push(c);
        end = Some(i + 1);
    }
    (spans, counts)
}

fn positive(h: &Histogram) -> Side {
    side(&h.positive_spans, &h.positive_buckets)
}

fn negative(h: &Histogram) -> Side {
    side(&h.negative_spans, &h.negative_buckets)
}

fn set_sides(h: &mut Histogram, pos: &[(i32, f64)], neg: &[(i32, f64)]) {
    (h.positive_spans, h.positive_buckets) = spans_of(pos);
    (h.negative_spans, h.negative_buckets) = spans_of(neg);
}

/// Leaves out empty buckets and joins adjacent spans (Prometheus's `Compact(0)`).
pub(crate) fn compact(h: &mut Histogram) {
    let (pos, neg) = (positive(h), negative(h));
    set_sides(h, &pos, &neg);
}

/// A side's buckets merged into the coarser schema `to` (bucket `i` of schema `from` falls
/// into `((i − 1) >> (from − to)) + 1`).
fn reduce(side: Side, from: i32, to: i32) -> Side {
    if from <= to {
        return side;
    }
    let shift = (from - to) as u32;
    let mut out: Side = Vec::with_capacity(side.len());
    for (i, c) in side {
        let target = (i.wrapping_sub(1) >> shift).wrapping_add(1);
        match out.last_mut() {
            Some((j, sum)) if *j == target => *sum += c,
            _ => out.push((target, c)),
        }
    }
    out
}

/// `h` at the coarser exponential schema `schema` (unchanged when it is not coarser).
pub(crate) fn to_schema(h: &Histogram, schema: i32) -> Histogram {
    let mut out = h.clone();
    if h.uses_custom_buckets() || schema >= h.schema {
        return out;
    }
    let pos = reduce(positive(h), h.schema, schema);
    let neg = reduce(negative(h), h.schema, schema);
    out.schema = schema;
    set_sides(&mut out, &pos, &neg);
    out
}

/// The zero count `h` would have with a zero bucket of at least `larger`, and the threshold
/// it ends at: raised to a populated bucket's edge when `larger` falls inside it
/// (Prometheus's `zeroCountForLargerThreshold`).
fn zero_count_for(h: &Histogram, pos: &Side, neg: &Side, mut larger: f64) -> (f64, f64) {
    if larger == h.zero_threshold {
        return (h.zero_count, larger);
    }
    let b = |i: i32| bound(i, h.schema, &h.custom_values);
    'again: loop {
        let mut zc = h.zero_count;
        for &(i, c) in pos {
            if b(i.wrapping_sub(1)) >= larger {
                break;
            }
            zc += c;
            if b(i) > larger {
                if c != 0.0 {
                    larger = b(i);
                }
                break;
            }
        }
        for &(i, c) in neg {
            if -b(i.wrapping_sub(1)) <= -larger {
                break;
            }
            zc += c;
            if -b(i) < -larger {
                if c != 0.0 {
                    larger = b(i);
                    continue 'again;
                }
                break;
            }
        }
        return (zc, larger);
    }
}

/// Widens a receiver's zero bucket (threshold `zt`) and `other`'s to one threshold that cuts
/// no populated bucket of either; returns the zero count `other` has with it (Prometheus's
/// `reconcileZeroBuckets`). `widen(t)` raises the receiver's threshold to at least `t`,
/// moving its buckets now inside into its zero count, and returns where it ended.
fn reconcile_zero(mut zt: f64, other: &Histogram, mut widen: impl FnMut(f64) -> f64) -> f64 {
    let (mut ozc, mut ozt) = (other.zero_count, other.zero_threshold);
    // `other`'s sides, built only when thresholds differ (rarely).
    let mut sides: Option<(Side, Side)> = None;
    // Each round widens one threshold to a bucket bound; a NaN threshold would never settle.
    let mut rounds = 0;
    while ozt != zt && !ozt.is_nan() && !zt.is_nan() && rounds < 64 {
        rounds += 1;
        if zt > ozt {
            let (op, on) = sides.get_or_insert_with(|| (positive(other), negative(other)));
            (ozc, ozt) = zero_count_for(other, op, on, zt);
        }
        if ozt > zt {
            zt = widen(ozt);
        }
    }
    ozc
}

/// Whether bucket `i` of an exponential `schema` lies inside a zero bucket of threshold `zt`.
fn inside_zero(i: i32, schema: i32, zt: f64) -> bool {
    bound(i.wrapping_sub(1), schema, &[]) < zt
}

/// `a + sign·b` bucket by bucket; `b`'s buckets for which `skip` holds are left out.
fn merge(a: &Side, b: &Side, sign: f64, skip: impl Fn(i32) -> bool) -> Side {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j < b.len() && skip(b[j].0) {
            j += 1;
            continue;
        }
        match (a.get(i), b.get(j)) {
            (Some(&(ia, ca)), Some(&(ib, cb))) if ia == ib => {
                out.push((ia, ca + sign * cb));
                i += 1;
                j += 1;
            }
            (Some(&(ia, ca)), Some(&(ib, _))) if ia < ib => {
                out.push((ia, ca));
                i += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (_, Some(&(ib, cb))) => {
                out.push((ib, sign * cb));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The bounds two custom-bucket histograms share.
fn intersect(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// A custom-bucket side mapped onto the coarser `bounds` (a bucket goes to the first bound at
/// or above its own upper bound; past the last, to the +Inf bucket).
fn remap(side: &Side, own: &[f64], bounds: &[f64]) -> Side {
    let mut out: Side = Vec::with_capacity(side.len());
    for &(i, c) in side {
        let upper = own.get(i as usize).copied().unwrap_or(f64::INFINITY);
        let target = bounds.partition_point(|&b| b < upper) as i32;
        match out.last_mut() {
            Some((j, sum)) if *j == target => *sum += c,
            _ => out.push((target, c)),
        }
    }
    out
}

/// The result of adding or subtracting two histograms.
pub(crate) struct Sum {
    pub h: Histogram,
    /// One said counter reset, the other not (the result's hint is unknown).
    pub collision: bool,
    /// Custom bounds differed and were reduced to the shared ones.
    pub reconciled: bool,
}

/// `a + b`, or `a − b` when `sub`; `None` when one has custom buckets and the other not
/// (Prometheus's `Add`/`Sub`, compacted). The reset hint follows Prometheus's
/// `adjustCounterReset`; a `-` operator marks its result a gauge itself.
pub(crate) fn add(a: &Histogram, b: &Histogram, sub: bool) -> Option<Sum> {
    if a.uses_custom_buckets() != b.uses_custom_buckets() {
        return None;
    }
    let mut h = a.clone();
    h.integer = false;
    let sign = if sub { -1.0 } else { 1.0 };
    let collision = adjust_hint(&mut h.reset_hint, b.reset_hint);
    let mut reconciled = false;
    let (mut hp, mut hn) = (positive(a), negative(a));
    h.count += sign * b.count;
    h.sum += sign * b.sum;
    if h.uses_custom_buckets() {
        let bp = positive(b);
        if a.custom_values == b.custom_values {
            hp = merge(&hp, &bp, sign, |_| false);
        } else {
            reconciled = true;
            let shared = intersect(&a.custom_values, &b.custom_values);
            hp = merge(
                &remap(&hp, &a.custom_values, &shared),
                &remap(&bp, &b.custom_values, &shared),
                sign,
                |_| false,
            );
            h.custom_values = shared;
        }
        set_sides(&mut h, &hp, &[]);
        return Some(Sum {
            h,
            collision,
            reconciled,
        });
    }
    let ozc = reconcile_zero(h.zero_threshold, b, |t| {
        (h.zero_count, h.zero_threshold) = zero_count_for(&h, &hp, &hn, t);
        // The buckets now inside the zero bucket are counted in it.
        let (schema, zt) = (h.schema, h.zero_threshold);
        hp.retain(|&(i, _)| !inside_zero(i, schema, zt));
        hn.retain(|&(i, _)| !inside_zero(i, schema, zt));
        zt
    });
    h.zero_count += sign * ozc;
    let schema = h.schema.min(b.schema);
    let (hp, hn) = (reduce(hp, h.schema, schema), reduce(hn, h.schema, schema));
    let (bp, bn) = (
        reduce(positive(b), b.schema, schema),
        reduce(negative(b), b.schema, schema),
    );
    h.schema = schema;
    let zt = h.zero_threshold;
    let in_zero = |i: i32| bound(i, schema, &[]) <= zt;
    let pos = merge(&hp, &bp, sign, in_zero);
    let neg = merge(&hn, &bn, sign, in_zero);
    set_sides(&mut h, &pos, &neg);
    Some(Sum {
        h,
        collision,
        reconciled,
    })
}

/// One side's buckets with Kahan compensation: (index, sum, compensation), increasing index.
type KSide = Vec<(i32, f64, f64)>;

/// A running Kahan-compensated sum of histograms (Prometheus's `KahanAdd`, which `sum`,
/// `avg`, `sum_over_time` and `avg_over_time` use): every count carries its compensation
/// term until [`KahanSum::finish`].
#[derive(Clone)]
pub(crate) struct KahanSum {
    /// Schema, zero threshold, custom bounds and hint of the sum; its counts are unused.
    meta: Histogram,
    count: (f64, f64),
    sum: (f64, f64),
    zero: (f64, f64),
    pos: KSide,
    neg: KSide,
}

/// Kahan–Neumaier step on a (sum, compensation) pair.
fn kinc(v: f64, (s, c): (f64, f64)) -> (f64, f64) {
    crate::functions::kahan_inc(v, s, c)
}

fn kside(side: Side) -> KSide {
    side.into_iter().map(|(i, v)| (i, v, 0.0)).collect()
}

/// A compensated side with each bucket moved to `target(index)` (non-decreasing), buckets
/// landing together summed with their compensations.
fn kregroup(side: KSide, target: impl Fn(i32) -> i32) -> KSide {
    let mut out: KSide = Vec::with_capacity(side.len());
    for (i, v, c) in side {
        let t = target(i);
        match out.last_mut() {
            Some((j, s, sc)) if *j == t => {
                (*s, *sc) = kinc(v, (*s, *sc));
                (*s, *sc) = kinc(c, (*s, *sc));
            }
            _ => out.push((t, v, c)),
        }
    }
    out
}

/// A compensated side merged into the coarser schema `to`.
fn kreduce(side: KSide, from: i32, to: i32) -> KSide {
    if from <= to {
        return side;
    }
    let shift = (from - to) as u32;
    kregroup(side, |i| (i.wrapping_sub(1) >> shift).wrapping_add(1))
}

/// A compensated custom-bucket side mapped onto the coarser `bounds` (see [`remap`]).
fn kremap(side: &KSide, own: &[f64], bounds: &[f64]) -> KSide {
    kregroup(side.clone(), |i| {
        let upper = own.get(i as usize).copied().unwrap_or(f64::INFINITY);
        bounds.partition_point(|&b| b < upper) as i32
    })
}

/// `b` added into `a`, compensated; `b`'s buckets for which `skip` holds are left out.
fn kmerge(a: KSide, b: &KSide, skip: impl Fn(i32) -> bool) -> KSide {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    for &(ib, vb, cb) in b.iter().filter(|x| !skip(x.0)) {
        while let Some(&x) = a.peek().filter(|x| x.0 < ib) {
            out.push(x);
            a.next();
        }
        match a.peek().copied().filter(|x| x.0 == ib) {
            Some((i, v, c)) => {
                a.next();
                let mut pair = kinc(vb, (v, c));
                if cb != 0.0 {
                    pair = kinc(cb, pair);
                }
                out.push((i, pair.0, pair.1));
            }
            None => out.push((ib, vb, cb)),
        }
    }
    out.extend(a);
    out
}

impl KahanSum {
    pub(crate) fn new(h: &Histogram) -> KahanSum {
        KahanSum {
            meta: Histogram {
                positive_spans: Vec::new(),
                positive_buckets: Vec::new(),
                negative_spans: Vec::new(),
                negative_buckets: Vec::new(),
                integer: false,
                ..h.clone()
            },
            count: (h.count, 0.0),
            sum: (h.sum, 0.0),
            zero: (h.zero_count, 0.0),
            pos: kside(positive(h)),
            neg: kside(negative(h)),
        }
    }

    /// Adds `o`; `None` when one has custom buckets and the other not (nothing changes).
    /// Returns (counter-reset collision, custom bounds reconciled) as [`add`] does.
    pub(crate) fn add(&mut self, o: &Histogram) -> Option<(bool, bool)> {
        if self.meta.uses_custom_buckets() != o.uses_custom_buckets() {
            return None;
        }
        let collision = adjust_hint(&mut self.meta.reset_hint, o.reset_hint);
        self.count = kinc(o.count, self.count);
        self.sum = kinc(o.sum, self.sum);
        if self.meta.uses_custom_buckets() {
            let op = kside(positive(o));
            let mut reconciled = false;
            if self.meta.custom_values == o.custom_values {
                self.pos = kmerge(std::mem::take(&mut self.pos), &op, |_| false);
            } else {
                reconciled = true;
                let shared = intersect(&self.meta.custom_values, &o.custom_values);
                let mine = kremap(&self.pos, &self.meta.custom_values, &shared);
                self.pos = kmerge(mine, &kremap(&op, &o.custom_values, &shared), |_| false);
                self.meta.custom_values = shared;
            }
            return Some((collision, reconciled));
        }
        // The wider zero bucket: buckets inside it move into the zero count.
        let ozc = reconcile_zero(self.meta.zero_threshold, o, |t| {
            let plain = |k: &KSide| -> Side { k.iter().map(|x| (x.0, x.1)).collect() };
            let view = Histogram {
                zero_count: self.zero.0,
                ..self.meta.clone()
            };
            let (_, zt) = zero_count_for(&view, &plain(&self.pos), &plain(&self.neg), t);
            let schema = self.meta.schema;
            let mut zero = self.zero;
            for side in [&mut self.pos, &mut self.neg] {
                side.retain(|&(i, v, c)| {
                    if inside_zero(i, schema, zt) {
                        zero = kinc(v, zero);
                        zero = kinc(c, zero);
                        false
                    } else {
                        true
                    }
                });
            }
            self.zero = zero;
            self.meta.zero_threshold = zt;
            zt
        });
        self.zero = kinc(ozc, self.zero);
        let schema = self.meta.schema.min(o.schema);
        let pos = kreduce(std::mem::take(&mut self.pos), self.meta.schema, schema);
        let neg = kreduce(std::mem::take(&mut self.neg), self.meta.schema, schema);
        let (bp, bn) = (
            kreduce(kside(positive(o)), o.schema, schema),
            kreduce(kside(negative(o)), o.schema, schema),
        );
        self.meta.schema = schema;
        let zt = self.meta.zero_threshold;
        let in_zero = |i: i32| bound(i, schema, &[]) <= zt;
        self.pos = kmerge(pos, &bp, in_zero);
        self.neg = kmerge(neg, &bn, in_zero);
        Some((collision, false))
    }

    /// Every count and its compensation multiplied by `f` (an incremental mean's scaling).
    pub(crate) fn scale(&mut self, f: f64) {
        for pair in [&mut self.count, &mut self.sum, &mut self.zero] {
            pair.0 *= f;
            pair.1 *= f;
        }
        for b in self.pos.iter_mut().chain(self.neg.iter_mut()) {
            b.1 *= f;
            b.2 *= f;
        }
    }

    /// Whether a count overflowed to infinity (Prometheus's `HasOverflow`).
    pub(crate) fn has_overflow(&self) -> bool {
        [self.count.0, self.sum.0, self.zero.0]
            .into_iter()
            .chain(self.pos.iter().chain(&self.neg).map(|b| b.1))
            .any(f64::is_infinite)
    }

    /// The sum divided by `n` (1 for the sum itself), each count `value/n + compensation/n`,
    /// compacted.
    pub(crate) fn finish(self, n: f64) -> Histogram {
        let f = |(s, c): (f64, f64)| s / n + c / n;
        let side = |k: &KSide| -> Side { k.iter().map(|&(i, s, c)| (i, f((s, c)))).collect() };
        let mut h = Histogram {
            count: f(self.count),
            sum: f(self.sum),
            zero_count: f(self.zero),
            ..self.meta
        };
        set_sides(&mut h, &side(&self.pos), &side(&self.neg));
        h
    }
}

/// The sum or the mean of histograms as Prometheus's `sum`/`avg` (and `sum_over_time`/
/// `avg_over_time`) compute them: Kahan-compensated, and a mean turns incremental once a sum
/// overflows.
pub(crate) struct Aggregate {
    acc: KahanSum,
    n: f64,
    avg: bool,
    incremental: bool,
}

impl Aggregate {
    pub(crate) fn new(h: &Histogram, avg: bool) -> Aggregate {
        Aggregate {
            acc: KahanSum::new(h),
            n: 1.0,
            avg,
            incremental: false,
        }
    }

    /// Adds `h`; `None` when its kind of buckets differs (the aggregate is then unusable).
    pub(crate) fn add(&mut self, h: &Histogram) -> Option<(bool, bool)> {
        self.n += 1.0;
        if !self.avg {
            return self.acc.add(h);
        }
        if !self.incremental {
            let mut next = self.acc.clone();
            let flags = next.add(h)?;
            if !next.has_overflow() {
                self.acc = next;
                return Some(flags);
            }
            self.incremental = true;
            self.acc.scale(1.0 / (self.n - 1.0));
        }
        self.acc.scale((self.n - 1.0) / self.n);
        self.acc.add(&div(h, self.n))
    }

    pub(crate) fn finish(self) -> Histogram {
        let n = if self.avg && !self.incremental {
            self.n
        } else {
            1.0
        };
        self.acc.finish(n)
    }
}

/// Prometheus's `adjustCounterReset`: the hint of a sum; true on a reset/no-reset collision.
fn adjust_hint(hint: &mut ResetHint, other: ResetHint) -> bool {
    match (*hint, other) {
        (a, b) if a == b => false,
        (ResetHint::Gauge, _) => false,
        (_, ResetHint::Gauge) => {
            *hint = ResetHint::Gauge;
            false
        }
        (ResetHint::Unknown, _) => false,
        (_, ResetHint::Unknown) => {
            *hint = ResetHint::Unknown;
            false
        }
        _ => {
            *hint = ResetHint::Unknown;
            true
        }
    }
}

/// `h · factor`, compacted; a negative factor makes it a gauge.
pub(crate) fn mul(h: &Histogram, factor: f64) -> Histogram {
    let mut out = h.clone();
    out.integer = false;
    out.zero_count *= factor;
    out.count *= factor;
    out.sum *= factor;
    out.positive_buckets.iter_mut().for_each(|c| *c *= factor);
    out.negative_buckets.iter_mut().for_each(|c| *c *= factor);
    if factor < 0.0 {
        out.reset_hint = ResetHint::Gauge;
    }
    compact(&mut out);
    out
}

/// `h / divisor`, compacted; dividing by zero leaves no buckets, a negative divisor makes it
/// a gauge.
pub(crate) fn div(h: &Histogram, divisor: f64) -> Histogram {
    let mut out = h.clone();
    out.integer = false;
    out.zero_count /= divisor;
    out.count /= divisor;
    out.sum /= divisor;
    if divisor == 0.0 {
        out.positive_spans.clear();
        out.positive_buckets.clear();
        out.negative_spans.clear();
        out.negative_buckets.clear();
        return out;
    }
    out.positive_buckets.iter_mut().for_each(|c| *c /= divisor);
    out.negative_buckets.iter_mut().for_each(|c| *c /= divisor);
    if divisor < 0.0 {
        out.reset_hint = ResetHint::Gauge;
    }
    compact(&mut out);
    out
}

/// Whether `cur` starts over after `prev`: its hint says so, or a count went down, or a
/// populated bucket disappeared, or its resolution or zero bucket changed in a way only a
/// reset allows (Prometheus's `DetectReset`).
pub(crate) fn detect_reset(cur: &Histogram, prev: &Histogram) -> bool {
    match cur.reset_hint {
        ResetHint::Yes => true,
        ResetHint::No => false,
        _ => counts_reset(cur, prev),
    }
}

/// The reset hint Prometheus's TSDB gives `cur` when it reads it back after `prev` (the
/// series' previous sample, if a histogram): a gauge stays a gauge; a counter histogram is
/// no reset, unless its counts say it is one, whatever its sender claimed (the TSDB starts a
/// chunk there, which reads back as unknown: Prometheus issue 15346). Without `prev` (a new
/// chunk) a sent "reset" reads back as unknown too.
pub(crate) fn chunk_hint(cur: &Histogram, prev: Option<&Histogram>) -> ResetHint {
    match (cur.reset_hint, prev) {
        (ResetHint::Gauge, _) => ResetHint::Gauge,
        (ResetHint::Yes, None) => ResetHint::Unknown,
        (hint, None) => hint,
        (_, Some(p)) if p.reset_hint == ResetHint::Gauge => ResetHint::Unknown,
        (_, Some(p)) if counts_reset(cur, p) => ResetHint::Unknown,
        _ => ResetHint::No,
    }
}

/// [`detect_reset`] from the counts alone, whatever the hint says.
fn counts_reset(cur: &Histogram, prev: &Histogram) -> bool {
    if cur.count < prev.count {
        return true;
    }
    // The usual case: the same layout, compared count by count without building sides.
    if cur.schema == prev.schema
        && cur.zero_threshold == prev.zero_threshold
        && cur.custom_values == prev.custom_values
        && cur.positive_spans == prev.positive_spans
        && cur.negative_spans == prev.negative_spans
    {
        let lower = |a: &[f64], b: &[f64]| a.iter().zip(b).any(|(c, p)| c < p);
        return cur.zero_count < prev.zero_count
            || lower(&cur.positive_buckets, &prev.positive_buckets)
            || lower(&cur.negative_buckets, &prev.negative_buckets);
    }
    if cur.uses_custom_buckets() {
        if !prev.uses_custom_buckets() {
            return true;
        }
        if cur.custom_values != prev.custom_values {
            let shared = intersect(&cur.custom_values, &prev.custom_values);
            return side_dropped(
                &remap(&positive(cur), &cur.custom_values, &shared),
                &remap(&positive(prev), &prev.custom_values, &shared),
            );
        }
        return side_dropped(&positive(cur), &positive(prev));
    }
    if prev.uses_custom_buckets() || cur.schema > prev.schema {
        return true;
    }
    if cur.zero_threshold < prev.zero_threshold {
        return true;
    }
    let (pp, pn) = (positive(prev), negative(prev));
    let (prev_zc, zt) = zero_count_for(prev, &pp, &pn, cur.zero_threshold);
    if zt != cur.zero_threshold {
        return true;
    }
    if cur.zero_count < prev_zc {
        return true;
    }
    let outside = |s: Side, schema: i32| -> Side {
        let mut s = reduce(s, schema, cur.schema);
        s.retain(|&(i, _)| bound(i, cur.schema, &[]) > zt);
        s
    };
    side_dropped(
        &outside(positive(cur), cur.schema),
        &outside(pp, prev.schema),
    ) || side_dropped(
        &outside(negative(cur), cur.schema),
        &outside(pn, prev.schema),
    )
}

/// Whether a bucket of `prev` is populated and missing in `cur`, or higher than in `cur`.
fn side_dropped(cur: &Side, prev: &Side) -> bool {
    let mut j = 0;
    for &(i, pc) in prev {
        while j < cur.len() && cur[j].0 < i {
            j += 1;
        }
        match cur.get(j) {
            Some(&(ci, cc)) if ci == i => {
                if cc < pc {
                    return true;
                }
            }
            _ => {
                if pc != 0.0 {
                    return true;
                }
            }
        }
    }
    false
}

/// Whether two histograms hold the same data (Prometheus's `Equals` of compacted
/// histograms: counts compared bit for bit, the reset hint ignored). Unlike `Equals` on
/// uncompacted histograms, an explicitly stored empty bucket makes no difference.
pub(crate) fn equals(a: &Histogram, b: &Histogram) -> bool {
    let bits = |x: f64| x.to_bits();
    let same_side = |x: Side, y: Side| {
        let nonzero = |s: Side| s.into_iter().filter(|p| p.1 != 0.0).collect::<Side>();
        let (x, y) = (nonzero(x), nonzero(y));
        x.len() == y.len()
            && x.iter()
                .zip(&y)
                .all(|(p, q)| p.0 == q.0 && bits(p.1) == bits(q.1))
    };
    a.schema == b.schema
        && bits(a.count) == bits(b.count)
        && bits(a.sum) == bits(b.sum)
        && (!a.uses_custom_buckets() || a.custom_values == b.custom_values)
        && a.zero_threshold == b.zero_threshold
        && bits(a.zero_count) == bits(b.zero_count)
        && same_side(negative(a), negative(b))
        && same_side(positive(a), positive(b))
}

/// A histogram as Go's `FloatHistogram.String` writes it, as `count_values` labels it:
/// `{count:N, sum:S, (lower,upper]:count, …}` with the populated negative buckets (most
/// negative first), the zero bucket if populated, then the populated positive buckets.
pub(crate) fn go_string(h: &Histogram) -> String {
    use crate::functions::instant::go_g;
    let custom = h.uses_custom_buckets();
    let bucket = |lower: f64, upper: f64, idx: i32, count: f64| {
        let (lo_in, up_in) = if custom {
            (idx == 0, true)
        } else {
            (lower < 0.0, upper > 0.0)
        };
        format!(
            "{}{},{}{}:{}",
            if lo_in { '[' } else { '(' },
            go_g(lower),
            go_g(upper),
            if up_in { ']' } else { ')' },
            go_g(count)
        )
    };
    let b = |i: i32| bound(i, h.schema, &h.custom_values);
    let mut out = format!("{{count:{}, sum:{}", go_g(h.count), go_g(h.sum));
    for &(i, c) in negative(h).iter().rev().filter(|p| p.1 != 0.0) {
        out.push_str(", ");
        out.push_str(&bucket(-b(i), -b(i.wrapping_sub(1)), i, c));
    }
    if h.zero_count != 0.0 {
        out.push_str(&format!(
            ", [{},{}]:{}",
            go_g(-h.zero_threshold),
            go_g(h.zero_threshold),
            go_g(h.zero_count)
        ));
    }
    for &(i, c) in positive(h).iter().filter(|p| p.1 != 0.0) {
        out.push_str(", ");
        out.push_str(&bucket(b(i.wrapping_sub(1)), b(i), i, c));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, zt: f64, zc: f64, pos: &[(i32, f64)]) -> Histogram {
        let mut h = Histogram {
            schema,
            zero_threshold: zt,
            zero_count: zc,
            count: zc + pos.iter().map(|p| p.1).sum::<f64>(),
            ..Histogram::default()
        };
        set_sides(&mut h, pos, &[]);
        h
    }

    #[test]
    fn add_reduces_to_the_coarser_schema() {
        // Schema 1 buckets 1..=4 are schema 0 buckets 1, 1, 2, 2.
        let a = h(1, 0.0, 0.0, &[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]);
        let b = h(0, 0.0, 0.0, &[(1, 10.0), (3, 5.0)]);
        let s = add(&a, &b, false).unwrap();
        assert_eq!(s.h.schema, 0);
        assert_eq!(positive(&s.h), vec![(1, 13.0), (2, 7.0), (3, 5.0)]);
        assert_eq!(s.h.count, 25.0);
        let d = add(&s.h, &b, true).unwrap();
        assert_eq!(positive(&d.h), vec![(1, 3.0), (2, 7.0)]);
    }

    #[test]
    fn add_widens_the_zero_bucket() {
        // Schema 0: bucket 0 is (0.5, 1], bucket 1 is (1, 2].
        let a = h(0, 0.5, 1.0, &[(0, 2.0), (1, 3.0)]);
        let b = h(0, 1.0, 4.0, &[(1, 5.0)]);
        let s = add(&a, &b, false).unwrap();
        assert_eq!(s.h.zero_threshold, 1.0);
        assert_eq!(s.h.zero_count, 7.0);
        assert_eq!(positive(&s.h), vec![(1, 8.0)]);
    }

    #[test]
    fn custom_bounds_are_intersected() {
        let mut a = h(-53, 0.0, 0.0, &[(0, 1.0), (1, 2.0), (2, 3.0)]);
        a.custom_values = vec![1.0, 2.0];
        let mut b = h(-53, 0.0, 0.0, &[(0, 4.0), (1, 5.0)]);
        b.custom_values = vec![2.0];
        let s = add(&a, &b, false).unwrap();
        assert!(s.reconciled);
        assert_eq!(s.h.custom_values, vec![2.0]);
        assert_eq!(positive(&s.h), vec![(0, 7.0), (1, 8.0)]);
        assert!(add(&a, &h(0, 0.0, 0.0, &[]), false).is_none());
    }

    #[test]
    fn resets() {
        let a = h(0, 0.0, 0.0, &[(1, 2.0), (2, 2.0)]);
        let grown = h(0, 0.0, 0.0, &[(1, 3.0), (2, 2.0), (5, 1.0)]);
        let lost = h(0, 0.0, 0.0, &[(1, 5.0)]);
        assert!(!detect_reset(&grown, &a));
        assert!(detect_reset(&lost, &a));
        assert!(detect_reset(&a, &grown));
        // Lower resolution with the same observations is no reset.
        assert!(!detect_reset(&to_schema(&grown, -1), &a));
        let mut hinted = grown.clone();
        hinted.reset_hint = ResetHint::Yes;
        assert!(detect_reset(&hinted, &a));
    }

    #[test]
    fn hostile_input_neither_hangs_nor_panics() {
        // A NaN zero threshold never matches another: adding must still end.
        let mut a = h(0, f64::NAN, 1.0, &[(1, 2.0)]);
        let b = h(0, 0.5, 1.0, &[(1, 2.0)]);
        assert!(add(&a, &b, false).is_some());
        assert!(add(&b, &a, false).is_some());
        // Indexes at the ends of i32 wrap as in Go.
        a.zero_threshold = 0.0;
        a.positive_spans = vec![Span {
            offset: i32::MAX,
            length: 1,
        }];
        assert_eq!(
            side(&a.positive_spans, &a.positive_buckets),
            vec![(i32::MAX, 2.0)]
        );
        assert!(add(&a, &b, false).is_some());
        let _ = detect_reset(&a, &b);
        let _ = to_schema(&a, -4);
    }

    #[test]
    fn chunk_hints_follow_the_counts() {
        let a = h(0, 0.0, 0.0, &[(1, 2.0)]);
        let mut more = h(0, 0.0, 0.0, &[(1, 3.0)]);
        let mut less = h(0, 0.0, 0.0, &[(1, 1.0)]);
        less.reset_hint = ResetHint::No;
        more.reset_hint = ResetHint::Yes;
        assert_eq!(chunk_hint(&less, Some(&a)), ResetHint::Unknown);
        assert_eq!(chunk_hint(&more, Some(&a)), ResetHint::No);
        assert_eq!(chunk_hint(&more, None), ResetHint::Unknown);
        less.reset_hint = ResetHint::Gauge;
        assert_eq!(chunk_hint(&less, Some(&a)), ResetHint::Gauge);
    }

    #[test]
    fn text_as_go_writes_it() {
        let mut x = h(0, 0.001, 2.0, &[(0, 1.0), (1, 3.0)]);
        x.negative_spans = vec![Span {
            offset: 0,
            length: 2,
        }];
        x.negative_buckets = vec![0.0, 4.0];
        x.sum = 1.5;
        assert_eq!(
            go_string(&x),
            "{count:6, sum:1.5, [-2,-1):4, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:3}"
        );
    }

    #[test]
    fn scaling_and_equality() {
        let a = h(0, 0.0, 1.0, &[(1, 2.0)]);
        let m = mul(&a, -2.0);
        assert_eq!(m.reset_hint, ResetHint::Gauge);
        assert_eq!(positive(&m), vec![(1, -4.0)]);
        assert!(div(&a, 0.0).positive_buckets.is_empty());
        assert!(equals(&div(&mul(&a, 2.0), 2.0), &a));
        assert!(!equals(&mul(&a, 2.0), &a));
    }
}
