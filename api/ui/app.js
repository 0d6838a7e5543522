// Augur's web UI: one page, no build step, no dependencies. It talks only to Augur's public
// HTTP API (relative URLs under <base href>, so it works behind --web.external-url and with
// the web config's authentication). Pages: query (graph with anomaly band and alert spans,
// table), alerts, rules, status.

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

// --- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

async function api(path, params = {}, signal) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, one);
  }
  let resp;
  try {
    resp = await fetch(url, { signal, headers: { Accept: "application/json" } });
  } catch (e) {
    if (e.name === "AbortError") throw new ApiError("canceled", "query canceled");
    throw new ApiError("network", `cannot reach Augur: ${e.message}`);
  }
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError("http", `HTTP ${resp.status} ${resp.statusText}`);
  }
  if (body.status !== "success") throw new ApiError(body.errorType || "error", body.error || `HTTP ${resp.status}`);
  return body;
}

// --- formatting --------------------------------------------------------------------------

const labelText = (m) => {
  const name = m.__name__ || "";
  const rest = Object.entries(m).filter(([k]) => k !== "__name__")
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
  return rest ? `${name}{${rest}}` : name || "{}";
};
const labelChips = (m) => el("span", { class: "labels" },
  Object.entries(m).map(([k, v]) => el("span", {}, `${k}="${v}"`)));
const fmtNum = (v) => {
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return (+v.toPrecision(6)).toString();
};
const fmtTime = (sec) => new Date(sec * 1000).toISOString().replace("T", " ").replace(/\.000Z$/, "Z");
const ago = (iso) => {
  if (!iso || iso.startsWith("0001")) return "never";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 60) return `${s.toFixed(1)}s ago`;
  if (s < 3600) return `${(s / 60).toFixed(1)}m ago`;
  return `${(s / 3600).toFixed(1)}h ago`;
};
const DURATIONS = { y: 31536000, w: 604800, d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
function parseDuration(s) {
  if (!s) return null;
  if (/^\d+(\.\d+)?$/.test(s)) return +s;
  let total = 0, rest = s.trim();
  const re = /^(\d+)(ms|y|w|d|h|m|s)/;
  while (rest) {
    const m = re.exec(rest);
    if (!m) return null;
    total += +m[1] * DURATIONS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}
const fmtDuration = (sec) => {
  for (const [u, n] of Object.entries(DURATIONS)) if (sec >= n && sec % n === 0) return `${sec / n}${u}`;
  return `${sec}s`;
};
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d",
  "#4d7c0f", "#7c3aed", "#b45309", "#0f766e", "#6b7280"];

// --- PromQL completion -------------------------------------------------------------------

const FUNCTIONS = {
  abs: "abs(v instant-vector)", absent: "absent(v instant-vector)", absent_over_time: "absent_over_time(v range-vector)",
  avg_over_time: "avg_over_time(v range-vector)", ceil: "ceil(v instant-vector)", changes: "changes(v range-vector)",
  clamp: "clamp(v instant-vector, min scalar, max scalar)", clamp_max: "clamp_max(v, max scalar)", clamp_min: "clamp_min(v, min scalar)",
  count_over_time: "count_over_time(v range-vector)", day_of_week: "day_of_week(v=vector(time()))", delta: "delta(v range-vector)",
  deriv: "deriv(v range-vector)", exp: "exp(v instant-vector)", floor: "floor(v instant-vector)",
  histogram_quantile: "histogram_quantile(φ scalar, b instant-vector)", histogram_count: "histogram_count(v instant-vector)",
  histogram_sum: "histogram_sum(v instant-vector)", histogram_fraction: "histogram_fraction(lower scalar, upper scalar, v instant-vector)",
  holt_winters: "holt_winters(v range-vector, sf scalar, tf scalar)", idelta: "idelta(v range-vector)", increase: "increase(v range-vector)",
  irate: "irate(v range-vector)", label_join: "label_join(v, dst, separator, src...)", label_replace: "label_replace(v, dst, replacement, src, regex)",
  last_over_time: "last_over_time(v range-vector)", ln: "ln(v instant-vector)", max_over_time: "max_over_time(v range-vector)",
  min_over_time: "min_over_time(v range-vector)", predict_linear: "predict_linear(v range-vector, t scalar)",
  quantile_over_time: "quantile_over_time(φ scalar, v range-vector)", rate: "rate(v range-vector)", resets: "resets(v range-vector)",
  round: "round(v instant-vector, to_nearest=1 scalar)", scalar: "scalar(v instant-vector)", sort: "sort(v instant-vector)",
  sort_desc: "sort_desc(v instant-vector)", sqrt: "sqrt(v instant-vector)", stddev_over_time: "stddev_over_time(v range-vector)",
  sum_over_time: "sum_over_time(v range-vector)", time: "time()", timestamp: "timestamp(v instant-vector)", vector: "vector(s scalar)",
  sum: "sum by (labels) (v)", avg: "avg by (labels) (v)", min: "min by (labels) (v)", max: "max by (labels) (v)",
  count: "count by (labels) (v)", topk: "topk(k, v)", bottomk: "bottomk(k, v)", quantile: "quantile(φ, v)",
  stddev: "stddev(v)", count_values: "count_values(label, v)", group: "group(v)",
  zscore: "zscore(v range-vector) — Augur: (newest − mean) / stddev of the window",
  ewma: "ewma(v range-vector, alpha scalar) — Augur: exponentially weighted moving average",
  ewma_deviation: "ewma_deviation(v range-vector, alpha scalar) — Augur: EWMA band width",
  seasonal_baseline: "seasonal_baseline(v range-vector, period scalar) — Augur: mean at this phase of past periods",
  predict: "predict(v range-vector, horizon scalar) — Augur: forecast",
  baseline_zscore: "baseline_zscore(v range-vector) — Augur: z-score against the same hour of past weeks",
  baseline_avg: "baseline_avg(v range-vector) — Augur: time-aware baseline mean",
  baseline_stddev: "baseline_stddev(v range-vector) — Augur: time-aware baseline deviation",
  severity: "severity(v range-vector) — Augur: SEV level 1–5 of the newest sample",
  anomaly_score: "anomaly_score(v range-vector) — Augur: 0–1 anomaly score of the newest sample",
};
const KEYWORDS = ["by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"];

let metricNames = null;
async function metricNamesOnce() {
  if (!metricNames) {
    try { metricNames = (await api("api/v1/label/__name__/values")).data; } catch { metricNames = []; }
  }
  return metricNames;
}

const cache = new Map();
async function cachedData(path) {
  if (!cache.has(path)) cache.set(path, api(path).then((b) => b.data).catch(() => []));
  return cache.get(path);
}

// What is being typed at the cursor: a label value (inside quotes after `name=`), a label
// name (after `{` or `,` inside braces), or a metric, function or keyword.
function completionContext(text) {
  const open = text.lastIndexOf("{"), close = text.lastIndexOf("}");
  if (open > close) {
    const inside = text.slice(open + 1);
    let m = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"([^"]*)$/.exec(inside);
    if (m) return { kind: "value", label: m[1], prefix: m[2] };
    m = /(?:^|,)\s*([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(inside);
    if (m) return { kind: "label", prefix: m[1] || "" };
    return null;
  }
  const m = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(text);
  return m && m[0].length >= 2 ? { kind: "name", prefix: m[0] } : null;
}

async function completions(ctx) {
  const lw = ctx.prefix.toLowerCase();
  if (ctx.kind === "value") {
    const values = await cachedData(`api/v1/label/${encodeURIComponent(ctx.label)}/values`);
    return values.filter((v) => v.toLowerCase().includes(lw) && v !== ctx.prefix).slice(0, 12)
      .map((v) => ({ text: v, hint: ctx.label }));
  }
  if (ctx.kind === "label") {
    const names = await cachedData("api/v1/labels");
    return names.filter((n) => n.startsWith(ctx.prefix) && n !== ctx.prefix && n !== "__name__").slice(0, 12)
      .map((n) => ({ text: n, hint: "label" }));
  }
  const names = await metricNamesOnce();
  return [
    ...Object.entries(FUNCTIONS).filter(([f]) => f.startsWith(lw)).map(([f, sig]) => ({ text: f + "(", hint: sig })),
    ...KEYWORDS.filter((k) => k.startsWith(lw) && k !== lw).map((k) => ({ text: k, hint: "keyword" })),
    ...names.filter((n) => n.toLowerCase().includes(lw) && n !== ctx.prefix).slice(0, 30).map((n) => ({ text: n, hint: "metric" })),
  ].slice(0, 12);
}

function attachCompletion(textarea, box, onChange) {
  let items = [], index = 0, ctx = null;
  const close = () => { box.hidden = true; items = []; };
  const insert = (text) => {
    const at = textarea.selectionStart;
    const from = at - ctx.prefix.length;
    textarea.value = textarea.value.slice(0, from) + text + textarea.value.slice(at);
    const pos = from + text.length;
    textarea.setSelectionRange(pos, pos);
    close();
    textarea.focus();
    onChange();
  };
  const render = () => {
    box.replaceChildren(...items.map((it, i) => el("div", {
      class: i === index ? "sel" : "", onmousedown: (e) => { e.preventDefault(); insert(it.text); },
    }, el("b", {}, it.text), it.hint ? el("span", { class: "muted" }, "  " + it.hint) : "")));
    box.hidden = items.length === 0;
  };
  textarea.addEventListener("input", async () => {
    ctx = completionContext(textarea.value.slice(0, textarea.selectionStart));
    if (!ctx) return close();
    const asked = ctx;
    const found = await completions(asked);
    if (asked !== ctx) return; // typed on meanwhile
    items = found;
    index = 0;
    render();
  });
  textarea.addEventListener("keydown", (e) => {
    if (box.hidden || !items.length) return;
    if (e.key === "ArrowDown") { index = (index + 1) % items.length; render(); e.preventDefault(); }
    else if (e.key === "ArrowUp") { index = (index + items.length - 1) % items.length; render(); e.preventDefault(); }
    else if (e.key === "Tab") { insert(items[index].text); e.preventDefault(); }
    else if (e.key === "Escape") close();
  });
  textarea.addEventListener("blur", () => setTimeout(close, 100));
}

// --- syntax highlighting -----------------------------------------------------------------

const TOKEN = /("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)|(#.*)|(\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*|0x[0-9a-f]+|\b(?:NaN|Inf)\b)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?|(=~|!~|==|!=|<=|>=|[-+*\/%^<>=@])|([{}()[\],])/gi;

// The query as spans: strings, comments, numbers and durations, functions, keywords, metric
// and label names, operators.
function highlight(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    let cls = "";
    if (m[1]) cls = "tok-str";
    else if (m[2]) cls = "tok-comment";
    else if (m[3]) cls = "tok-num";
    else if (m[4]) {
      const w = m[4];
      cls = m[5] && FUNCTIONS[w] ? "tok-fn" : KEYWORDS.includes(w.toLowerCase()) ? "tok-kw" : "tok-name";
    } else if (m[6]) cls = "tok-op";
    else cls = "tok-punct";
    out.push(el("span", { class: cls }, m[4] ? m[4] : m[0]));
    if (m[4] && m[5]) out.push(document.createTextNode(m[5]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  // A trailing newline needs a character after it to take up its line.
  out.push(document.createTextNode(text.endsWith("\n") ? " " : ""));
  return out;
}

function attachHighlighting(textarea, pre) {
  const sync = () => {
    pre.replaceChildren(...highlight(textarea.value));
    pre.scrollTop = textarea.scrollTop;
    pre.style.height = textarea.offsetHeight + "px";
  };
  textarea.addEventListener("input", sync);
  textarea.addEventListener("scroll", () => { pre.scrollTop = textarea.scrollTop; });
  new ResizeObserver(sync).observe(textarea);
  sync();
  return sync;
}

// --- chart -------------------------------------------------------------------------------

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { hi = lo + 1; lo -= 1; }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

// series: [{name, color, points: [[t, v]], hidden}], band: [{lower:[[t,v]], upper, expected, outside:[[t,v]]}],
// alerts: [{name, spans: [[t0, t1]]}]
function drawChart(container, { series, bands = [], alerts = [], start, end, stacked }) {
  const W = container.clientWidth || 1000, H = 360, L = 64, R = 12, T = 10, B = 26;
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const visible = series.filter((s) => !s.hidden);
  let drawn = visible;
  if (stacked) {
    const acc = new Map();
    drawn = visible.map((s) => ({
      ...s, points: s.points.map(([t, v]) => { const base = acc.get(t) || 0; acc.set(t, base + v); return [t, base + v]; }),
    }));
  }
  const values = [];
  for (const s of drawn) for (const [, v] of s.points) if (isFinite(v)) values.push(v);
  for (const b of bands) for (const side of [b.lower, b.upper]) for (const [, v] of side) if (isFinite(v)) values.push(v);
  let lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
  if (stacked) lo = Math.min(0, lo);
  const ticks = niceTicks(lo, hi, 5);
  lo = Math.min(lo, ticks[0]); hi = Math.max(hi, ticks[ticks.length - 1]);
  const x = (t) => L + ((t - start) / (end - start || 1)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  for (const a of alerts) for (const [t0, t1] of a.spans) {
    const r = svg("rect", { class: "alert", x: x(t0), y: T, width: Math.max(2, x(t1) - x(t0)), height: H - T - B });
    r.append(svg("title")); r.lastChild.textContent = `firing: ${a.name}`;
    root.append(r);
  }
  for (const v of ticks) {
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const t = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }); t.textContent = fmtNum(v); root.append(t);
  }
  const span = end - start;
  const tstep = niceTicks(0, span, 6)[1] || span;
  for (let t = Math.ceil(start / tstep) * tstep; t <= end; t += tstep) {
    const lab = svg("text", { x: x(t), y: H - 8, "text-anchor": "middle" });
    const d = new Date(t * 1000);
    lab.textContent = span > 2 * 86400 ? d.toISOString().slice(5, 16).replace("T", " ") : d.toISOString().slice(11, 16);
    root.append(lab);
  }
  const path = (pts) => {
    let d = "", pen = false, prev = null;
    for (const [t, v] of pts) {
      if (!isFinite(v)) { pen = false; continue; }
      const gap = prev !== null && t - prev > 2.5 * (pts.step || 0) && pts.step;
      d += `${pen && !gap ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true; prev = t;
    }
    return d;
  };
  for (const b of bands) {
    if (b.lower.length) {
      const up = b.upper.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      const down = b.lower.slice().reverse().map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      root.append(svg("polygon", { class: "band", points: up.concat(down).join(" ") }));
      root.append(svg("path", { class: "expected", d: path(b.expected) }));
    }
  }
  for (const s of drawn) root.append(svg("path", { class: "series", d: path(s.points), stroke: s.color }));
  for (const b of bands) for (const [t, v] of b.outside) root.append(svg("circle", { class: "outside", cx: x(t), cy: y(v), r: 3 }));
  container.replaceChildren(root);
}

// --- query page --------------------------------------------------------------------------

const RANGES = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "2d", "1w", "2w"];

function queryPage(main) {
  const p = new URLSearchParams(location.search);
  const st = {
    expr: p.get("g0.expr") || "",
    range: p.get("g0.range_input") || "1h",
    end: p.get("g0.end_input") || "",
    step: p.get("g0.step_input") || "",
    tab: p.get("g0.tab") === "1" ? "table" : "graph",
    stacked: p.get("g0.stacked") === "1",
    band: p.get("g0.band") || "",
    alpha: p.get("g0.alpha") || "0.1",
    k: p.get("g0.k") || "3",
    window: p.get("g0.window") || "1h",
  };
  const expr = el("textarea", { id: "expr", spellcheck: "false", placeholder: "Expression (press Shift+Enter for newlines)" });
  expr.value = st.expr;
  const shown = el("pre", { class: "highlight", "aria-hidden": "true" });
  const editor = el("div", { class: "editor" }, shown, expr);
  const complete = el("div", { class: "complete", hidden: true });
  const range = el("select", { id: "range" }, RANGES.map((r) => el("option", { selected: r === st.range }, r)));
  const endInput = el("input", { id: "end", placeholder: "end: now", value: st.end, size: 22, title: "RFC 3339 or Unix time; empty: now" });
  const step = el("input", { id: "step", placeholder: "step: auto", value: st.step, size: 8 });
  const stacked = el("input", { type: "checkbox", id: "stacked", checked: st.stacked });
  const band = el("select", { id: "band" },
    el("option", { value: "" }, "no band"),
    el("option", { value: "ewma", selected: st.band === "ewma" }, "EWMA ± k·deviation"),
    el("option", { value: "baseline", selected: st.band === "baseline" }, "baseline ± k·stddev"));
  const alpha = el("input", { id: "alpha", type: "number", step: "0.05", min: "0.01", max: "1", value: st.alpha, title: "EWMA alpha" });
  const k = el("input", { id: "k", type: "number", step: "0.5", min: "0.5", value: st.k, title: "band half-width in deviations" });
  const win = el("input", { id: "window", value: st.window, size: 5, title: "window of the band's functions" });
  const run = el("button", { class: "primary", id: "execute" }, "Execute");
  const cancel = el("button", { id: "cancel", hidden: true }, "Cancel");
  const status = el("span", { class: "muted", id: "status" });
  const tabs = el("div", { class: "tabs row" },
    el("button", { "data-tab": "graph", class: st.tab === "graph" ? "on" : "" }, "Graph"),
    el("button", { "data-tab": "table", class: st.tab === "table" ? "on" : "" }, "Table"));
  const out = el("div", { id: "output" });
  main.replaceChildren(
    el("div", { class: "panel" }, editor, complete,
      el("div", { class: "row", style: "margin-top:8px" }, run, cancel, status)),
    el("div", { class: "panel" }, tabs,
      el("div", { class: "row", style: "margin:8px 0" },
        el("label", {}, "Range ", range), endInput, step,
        el("label", {}, stacked, " stacked"),
        el("label", {}, "Anomaly band ", band), el("label", {}, "α ", alpha), el("label", {}, "k ", k),
        el("label", {}, "window ", win)),
      out));
  const rehighlight = attachHighlighting(expr, shown);
  attachCompletion(expr, complete, rehighlight);

  let controller = null;
  const save = () => {
    const q = new URLSearchParams();
    q.set("g0.expr", expr.value);
    q.set("g0.tab", st.tab === "table" ? "1" : "0");
    q.set("g0.range_input", range.value);
    if (endInput.value) q.set("g0.end_input", endInput.value);
    if (step.value) q.set("g0.step_input", step.value);
    if (stacked.checked) q.set("g0.stacked", "1");
    if (band.value) { q.set("g0.band", band.value); q.set("g0.alpha", alpha.value); q.set("g0.k", k.value); q.set("g0.window", win.value); }
    history.replaceState(null, "", "query?" + q.toString());
  };
  const endTime = () => {
    const v = endInput.value.trim();
    if (!v) return Date.now() / 1000;
    if (/^\d+(\.\d+)?$/.test(v)) return +v;
    const t = Date.parse(v);
    return isNaN(t) ? Date.now() / 1000 : t / 1000;
  };
  const showError = (e) => {
    const box = el("div", { class: "error", id: "error" }, e.type && e.type !== "error" ? `${e.type}: ${e.message}` : e.message);
    // Prometheus's parse errors name a position: "1:7: parse error: ..." or "at char 7".
    const m = /(?:^|\s)(\d+):(\d+): parse error/.exec(e.message) || /at char (\d+)/.exec(e.message);
    if (m) {
      const col = +(m[2] || m[1]);
      const line = expr.value.split("\n")[m[2] ? +m[1] - 1 : 0] || "";
      box.append("\n\n" + line + "\n" + " ".repeat(Math.max(0, col - 1)) + "^");
    }
    out.replaceChildren(box);
  };
  const annotations = (bodies) => {
    const msgs = [...new Set(bodies.flatMap((b) => [...(b.warnings || []), ...(b.infos || [])]))];
    return msgs.map((w) => el("div", { class: "warning" }, w));
  };

  async function execute() {
    save();
    const q = expr.value.trim();
    if (!q) { out.replaceChildren(el("p", { class: "muted" }, "Enter an expression.")); return; }
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    run.disabled = true; cancel.hidden = false;
    status.replaceChildren(el("span", { class: "spinner" }), " running…");
    const started = performance.now();
    try {
      if (st.tab === "table") await table(q, signal);
      else await graph(q, signal);
      status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(2)} s`;
    } catch (e) {
      status.textContent = "";
      showError(e);
    } finally {
      run.disabled = false; cancel.hidden = true;
    }
  }

  async function table(q, signal) {
    const body = await api("api/v1/query", { query: q, time: endTime() }, signal);
    const d = body.data;
    let rows;
    if (d.resultType === "vector") {
      rows = d.result.map((r) => el("tr", {}, el("td", { class: "mono" }, labelText(r.metric)),
        el("td", { class: "num" }, r.value ? r.value[1] : JSON.stringify(r.histogram && r.histogram[1]))));
    } else if (d.resultType === "matrix") {
      rows = d.result.map((r) => el("tr", {}, el("td", { class: "mono" }, labelText(r.metric)),
        el("td", { class: "num" }, (r.values || []).map(([t, v]) => `${v} @${t}`).join("\n"))));
    } else {
      rows = [el("tr", {}, el("td", {}, d.resultType), el("td", { class: "num" }, d.result[1]))];
    }
    out.replaceChildren(...annotations([body]),
      el("table", { id: "result-table" }, el("tr", {}, el("th", {}, "series"), el("th", {}, "value")), rows),
      el("p", { class: "muted" }, `${rows.length} result${rows.length === 1 ? "" : "s"}`));
  }

  async function graph(q, signal) {
    const rangeSec = parseDuration(range.value) || 3600;
    const end = endTime(), start = end - rangeSec;
    const stepSec = parseDuration(step.value) || Math.max(1, Math.round(rangeSec / 250));
    const params = { start, end, step: stepSec };
    const main = api("api/v1/query_range", { ...params, query: q }, signal);
    const alerts = api("api/v1/query_range", { ...params, query: 'ALERTS{alertstate="firing"}' }, signal).catch(() => null);
    let bandQueries = null;
    if (band.value) {
      const w = parseDuration(win.value) ? win.value : "1h";
      const sub = `(${q})[${w}:${fmtDuration(stepSec)}]`;
      // No band before the window holds 10 samples (the detectors' warm-up).
      const warm = ` and count_over_time(${sub}) >= 10`;
      const [center, dev] = (band.value === "ewma"
        ? [`ewma(${sub}, ${+alpha.value || 0.1})`, `ewma_deviation(${sub}, ${+alpha.value || 0.1})`]
        : [`baseline_avg(${sub})`, `baseline_stddev(${sub})`]).map((f) => f + warm);
      bandQueries = Promise.all([center, dev].map((query) => api("api/v1/query_range", { ...params, query }, signal)));
    }
    const body = await main;
    const data = body.data;
    if (data.resultType !== "matrix") throw new ApiError("bad_data", `the expression returns a ${data.resultType}; use the table`);
    const key = (m) => labelText(Object.fromEntries(Object.entries(m).filter(([k]) => k !== "__name__")));
    const series = data.result.map((r, i) => {
      const pts = (r.values || []).map(([t, v]) => [t, parseFloat(v)]);
      pts.step = stepSec;
      return { name: labelText(r.metric), key: key(r.metric), color: PALETTE[i % PALETTE.length], points: pts, hidden: false };
    });
    const bands = [];
    const extra = [body];
    if (bandQueries) {
      const [c, d] = await bandQueries;
      extra.push(c, d);
      const byKey = (res) => new Map(res.data.result.map((r) => [key(r.metric), new Map((r.values || []).map(([t, v]) => [t, +v]))]));
      const cs = byKey(c), ds = byKey(d), kk = +k.value || 3;
      for (const s of series) {
        const cm = cs.get(s.key), dm = ds.get(s.key);
        if (!cm || !dm) continue;
        const lower = [], upper = [], expected = [], outside = [];
        for (const [t, v] of s.points) {
          const cv = cm.get(t), dv = dm.get(t);
          if (cv === undefined || dv === undefined) continue;
          expected.push([t, cv]); lower.push([t, cv - kk * dv]); upper.push([t, cv + kk * dv]);
          if (v < cv - kk * dv || v > cv + kk * dv) outside.push([t, v]);
        }
        expected.step = stepSec;
        bands.push({ lower, upper, expected, outside });
      }
    }
    const alertSpans = [];
    const a = await alerts;
    // An alert is about a graphed series when the labels they share agree (ALERTS carries
    // the alerting expression's output labels and the rule's own).
    const about = (alert) => data.result.some((r) => {
      const shared = Object.keys(r.metric).filter((k) => k !== "__name__" && k in alert);
      return shared.length > 0 && shared.every((k) => alert[k] === r.metric[k]);
    });
    if (a) {
      for (const r of a.data.result.filter((x) => about(x.metric))) {
        const spans = [];
        for (const [t] of r.values || []) {
          const last = spans[spans.length - 1];
          if (last && t - last[1] <= stepSec * 1.5) last[1] = t; else spans.push([t, t]);
        }
        alertSpans.push({ name: r.metric.alertname || labelText(r.metric), spans });
      }
    }
    const chart = el("div", { id: "chart" });
    const legend = el("div", { class: "legend", id: "legend" });
    const outsideCount = bands.reduce((n, b) => n + b.outside.length, 0);
    out.replaceChildren(...annotations(extra), chart, legend,
      el("p", { class: "muted", id: "summary" },
        `${series.length} series, step ${fmtDuration(stepSec)}`,
        bands.length ? `; ${outsideCount} point${outsideCount === 1 ? "" : "s"} outside the band` : "",
        alertSpans.length ? `; ${alertSpans.length} firing alert${alertSpans.length === 1 ? "" : "s"} shaded` : ""));
    const redraw = () => drawChart(chart, { series, bands, alerts: alertSpans, start, end, stacked: stacked.checked });
    legend.replaceChildren(...series.map((s) => el("span", {
      class: s.hidden ? "off" : "", onclick: (e) => { s.hidden = !s.hidden; e.currentTarget.classList.toggle("off"); redraw(); },
    }, el("i", { style: `background:${s.color}` }), s.name)));
    redraw();
  }

  run.addEventListener("click", execute);
  cancel.addEventListener("click", () => controller && controller.abort());
  expr.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey && $(".complete").hidden) { e.preventDefault(); execute(); } });
  for (const b of tabs.querySelectorAll("button")) {
    b.addEventListener("click", () => {
      st.tab = b.dataset.tab;
      for (const o of tabs.querySelectorAll("button")) o.classList.toggle("on", o === b);
      execute();
    });
  }
  for (const c of [range, stacked, band]) c.addEventListener("change", execute);
  if (st.expr) execute();
  else expr.focus();
}

// --- alerts and rules --------------------------------------------------------------------

const graphLink = (q, bandOn) => {
  const p = new URLSearchParams({ "g0.expr": q, "g0.tab": "0", "g0.range_input": "6h" });
  if (bandOn) p.set("g0.band", "ewma");
  return el("a", { href: "query?" + p.toString() }, "graph");
};

async function alertsPage(main) {
  main.replaceChildren(el("p", {}, el("span", { class: "spinner" }), " loading alerts…"));
  const body = await api("api/v1/rules", { type: "alert" });
  const rules = body.data.groups.flatMap((g) => g.rules.map((r) => ({ ...r, group: g.name })));
  const severities = [...new Set(["SEV1", "SEV2", "SEV3", "SEV4", "SEV5", "critical", "warning", "info",
    ...rules.map((r) => r.labels && r.labels.severity).filter(Boolean)])];
  const want = { firing: true, pending: true, inactive: true };
  const sevSel = el("select", { id: "severity" }, el("option", { value: "" }, "any severity"), severities.map((s) => el("option", {}, s)));
  const list = el("div", { id: "alert-list" });
  const counts = Object.fromEntries(["firing", "pending", "inactive"].map((s) => [s, rules.filter((r) => r.state === s).length]));
  const filters = el("div", { class: "row panel" }, ["firing", "pending", "inactive"].map((s) => el("label", {},
    el("input", { type: "checkbox", checked: true, onchange: (e) => { want[s] = e.target.checked; render(); } }),
    " ", el("span", { class: `state ${s}` }, s), ` (${counts[s]})`)), sevSel);
  sevSel.addEventListener("change", () => render());
  function render() {
    const sev = sevSel.value;
    const shown = rules.filter((r) => want[r.state] && (!sev || (r.labels && r.labels.severity) === sev
      || r.alerts.some((a) => a.labels.severity === sev)));
    list.replaceChildren(...shown.map((r) => el("div", { class: "panel alert-rule" },
      el("div", { class: "row" }, el("span", { class: `state ${r.state}` }, r.state), el("b", {}, r.name),
        el("span", { class: "muted" }, `${r.group} · ${r.alerts.length} active`), graphLink(r.query, true)),
      el("pre", { class: "mono" }, r.query),
      r.labels && Object.keys(r.labels).length ? labelChips(r.labels) : "",
      r.alerts.length ? el("table", {}, el("tr", {}, ["labels", "state", "active since", "value", "annotations"].map((h) => el("th", {}, h))),
        r.alerts.map((a) => el("tr", {}, el("td", {}, labelChips(a.labels)), el("td", {}, el("span", { class: `state ${a.state}` }, a.state)),
          el("td", {}, a.activeAt ? `${fmtTime(Date.parse(a.activeAt) / 1000)} (${ago(a.activeAt)})` : ""),
          el("td", { class: "num" }, fmtNum(parseFloat(a.value))),
          el("td", {}, Object.entries(a.annotations || {}).map(([k, v]) => el("div", {}, el("b", {}, k + ": "), v)))))) : "")));
    if (!shown.length) list.replaceChildren(el("p", { class: "muted" }, "No alerting rules match."));
  }
  main.replaceChildren(el("h2", {}, "Alerts"), filters, list);
  render();
}

async function rulesPage(main) {
  main.replaceChildren(el("p", {}, el("span", { class: "spinner" }), " loading rules…"));
  const body = await api("api/v1/rules");
  const groups = body.data.groups;
  main.replaceChildren(el("h2", {}, "Rules"), ...groups.map((g) => el("div", { class: "panel rule-group" },
    el("div", { class: "row" }, el("b", {}, g.name), el("span", { class: "muted" },
      `${g.file} · every ${fmtDuration(g.interval)} · last evaluation ${ago(g.lastEvaluation)} · took ${(g.evaluationTime * 1000).toFixed(1)} ms`)),
    el("table", {}, el("tr", {}, ["rule", "health", "last evaluation", "duration", "error"].map((h) => el("th", {}, h))),
      g.rules.map((r) => el("tr", {},
        el("td", {}, el("div", {}, el("b", {}, r.type === "alerting" ? "alert: " : "record: "), r.name, " ", graphLink(r.type === "alerting" ? r.query : r.name, false)),
          el("pre", { class: "mono" }, r.query)),
        el("td", {}, el("span", { class: `state ${r.health === "ok" ? "ok" : r.health === "err" ? "err" : "unknown"}` }, r.health)),
        el("td", {}, ago(r.lastEvaluation)), el("td", { class: "num" }, `${(r.evaluationTime * 1000).toFixed(2)} ms`),
        el("td", { class: "error" }, r.lastError || "")))))));
  if (!groups.length) main.append(el("p", { class: "muted" }, "No rule groups are loaded."));
}

async function statusPage(main) {
  main.replaceChildren(el("p", {}, el("span", { class: "spinner" }), " loading status…"));
  const [build, runtime, flags, config, tsdb] = await Promise.all(["buildinfo", "runtimeinfo", "flags", "config", "tsdb"]
    .map((p) => api(`api/v1/status/${p}`).then((b) => b.data).catch((e) => ({ error: e.message }))));
  const kv = (obj) => el("table", { class: "kv" }, Object.entries(obj).map(([k, v]) => el("tr", {}, el("th", {}, k),
    el("td", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v)))));
  const top = (title, list) => el("div", {}, el("h2", {}, title), el("table", {},
    (list || []).map((e) => el("tr", {}, el("td", { class: "mono" }, e.name), el("td", { class: "num" }, e.value)))));
  main.replaceChildren(
    el("h2", { id: "build" }, "Build"), kv(build), el("h2", { id: "runtime" }, "Runtime"), kv(runtime),
    el("h2", { id: "tsdb" }, "TSDB"), kv(tsdb.headStats || {}),
    top("Series by metric name", tsdb.seriesCountByMetricName),
    top("Series by label pair", tsdb.seriesCountByLabelValuePair),
    top("Values by label name", tsdb.labelValueCountByLabelName),
    el("h2", { id: "flags" }, "Flags"), kv(flags),
    el("h2", { id: "config" }, "Configuration"), el("pre", { class: "config" }, config.yaml || config.error || ""));
  const anchor = { "/flags": "flags", "/config": "config", "/tsdb-status": "tsdb" }[route()];
  if (anchor) document.getElementById(anchor).scrollIntoView();
}

// --- router ------------------------------------------------------------------------------

function route() {
  const base = new URL(document.baseURI).pathname.replace(/\/$/, "");
  return location.pathname.slice(base.length) || "/";
}

async function start() {
  const main = $("#main");
  const r = route();
  const page = { "/": "query", "/query": "query", "/graph": "query", "/alerts": "alerts", "/rules": "rules",
    "/status": "status", "/flags": "status", "/config": "status", "/tsdb-status": "status" }[r] || "query";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  try {
    if (page === "query") queryPage(main);
    else if (page === "alerts") await alertsPage(main);
    else if (page === "rules") await rulesPage(main);
    else await statusPage(main);
  } catch (e) {
    main.replaceChildren(el("div", { class: "error" }, e.message));
  }
}

start();
