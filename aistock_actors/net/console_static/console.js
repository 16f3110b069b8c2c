// The operator console: polls /api/status every second and draws it; the control buttons POST
// to /api/<action> with the token typed in the page (kept in this tab's memory only).
"use strict";

const POLL_MS = 1000;
const CURVE_EVERY = 5;
let polls = 0;
let controlEnabled = false;

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function num(value, digits) {
  return typeof value === "number" ? value.toFixed(digits === undefined ? 2 : digits) : "n/a";
}

function money(value) {
  return typeof value === "number"
    ? "$" + value.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2})
    : "n/a";
}

function pct(value) { return typeof value === "number" ? (value * 100).toFixed(2) + " %" : "n/a"; }

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = el("tr");
    for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
    return tr;
  }));
}

function numCell(text) { return el("td", text, "num"); }

function showOverview(st) {
  const process = $("process");
  process.textContent = st.daemon ? st.daemon.summary : "unknown";
  process.className = st.daemon && st.daemon.state === "running" ? "good"
    : st.daemon && st.daemon.state === "stale_lock" ? "warn" : "bad";
  const halt = $("halt-state");
  halt.dataset.halted = String(st.halted);
  halt.textContent = st.halted ? "HALTED: " + st.halt.reason + " since " + st.halt.halted_at
    : "not halted";
  halt.className = st.halted ? "bad" : "good";
  $("halt-why").textContent = st.halted ? st.halt.message : "—";
  const ks = $("kill-switch");
  ks.dataset.active = String(st.kill_switch);
  ks.textContent = st.kill_switch ? "ACTIVE" : "off";
  ks.className = st.kill_switch ? "bad" : "good";
  $("failures").textContent = st.consecutive_failures + " / " + st.max_consecutive_failures;
  $("cycles").textContent = st.cycles_total + " total, " + st.cycles_succeeded + " ok, "
    + st.cycles_failed + " failed; last success " + (st.last_success_at || "never");
  $("mode").textContent = st.mode + " — " + st.state_dir;
}

function showPaper(st) {
  const paper = st.paper;
  $("equity").dataset.value = paper ? String(paper.equity) : "";
  $("equity").textContent = paper ? money(paper.equity) : "no trade step has run";
  $("drawdown").dataset.value = paper ? String(paper.drawdown) : "";
  $("drawdown").textContent = paper ? pct(paper.drawdown) : "n/a";
  $("as-of").textContent = paper ? (paper.as_of || "never") + ", model " + (paper.model_id || "none")
    : "—";
  const rows = (paper ? paper.positions : []).map((p) => {
    const tr = el("tr");
    tr.dataset.symbol = p.symbol;
    tr.dataset.quantity = String(p.quantity);
    tr.dataset.weight = String(p.weight);
    tr.append(el("td", p.symbol), numCell(num(p.quantity)), numCell(num(p.last_price)),
      numCell(num(p.entry_price)), numCell(money(p.value)), numCell(pct(p.weight)));
    return tr;
  });
  $("positions").tBodies[0].replaceChildren(...rows);
}

function drawChart(curve) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const width = Math.max(svg.clientWidth || 600, 100);  // 1 unit = 1 pixel: text is not stretched
  svg.setAttribute("viewBox", "0 0 " + width + " 180");
  svg.replaceChildren();
  if (!curve || curve.length < 2) {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", "10"); t.setAttribute("y", "30"); t.textContent = "no equity curve yet";
    svg.appendChild(t);
    return;
  }
  const values = curve.map((p) => p[1]);
  let peak = -Infinity;
  const dd = values.map((v) => { peak = Math.max(peak, v); return peak > 0 ? 1 - v / peak : 0; });
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const maxDd = Math.max(...dd) || 1;
  const x = (i) => (i / (values.length - 1)) * width;
  const line = (ys, color, id) => {
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", ys.map((y, i) => x(i).toFixed(1) + "," + y.toFixed(1)).join(" "));
    path.setAttribute("fill", "none"); path.setAttribute("stroke", color);
    path.setAttribute("stroke-width", "1.5"); path.setAttribute("id", id);
    svg.appendChild(path);
  };
  line(values.map((v) => 120 - ((v - lo) / span) * 110), "#1d4ed8", "equity-line");
  line(dd.map((d) => 130 + (d / maxDd) * 45), "#b91c1c", "drawdown-line");
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "6"); label.setAttribute("y", "14"); label.setAttribute("font-size", "11");
  label.textContent = "equity " + money(lo) + " – " + money(hi) + "; drawdown (red) max "
    + pct(Math.max(...dd));
  svg.appendChild(label);
}

function showCycle(st) {
  const lc = st.last_cycle;
  $("cycle-title").textContent = lc ? lc.cycle_id + ": " + lc.outcome + " (finished "
    + lc.finished_at + ")" : "no cycle has run yet";
  fillRows($("steps").tBodies[0], (lc ? lc.steps : []).map((s) => [
    s.name, el("td", s.status, s.status === "ok" ? "good" : s.status === "skipped" ? "dim" : "bad"),
    numCell(num(s.duration_s) + " s"), s.detail || Object.entries(s.data || {})
      .filter(([, v]) => v !== null && typeof v !== "object")
      .map(([k, v]) => k + "=" + (typeof v === "number" ? +v.toPrecision(4) : v)).join(", ")]));
}

function decisionButton(label, action, id) {
  const b = el("button", label);
  b.dataset.action = action + "/" + id;
  b.addEventListener("click", () => control(b.dataset.action));
  b.disabled = !controlEnabled;
  return el("td").appendChild(b).parentNode;
}

function showModel(st) {
  const m = st.active_model;
  $("active-model").textContent = m ? m.id + " (since " + m.activated_at + ")" : "no active model";
  $("model-why").textContent = st.active_model_why || "";
  fillRows($("pending").tBodies[0], st.pending_approvals.map((p) => {
    const cell = el("td");
    for (const [label, action] of [["approve", "approve"], ["reject", "reject"]]) {
      cell.appendChild(decisionButton(label, action, p.id).firstChild);
    }
    return [p.id, numCell(num(p.sharpe, 3)), cell];
  }));
  $("verdicts").replaceChildren(...(st.recent_verdicts || []).map((v) => {
    const div = el("div");
    div.appendChild(el("p", v.time + "  " + v.model_id + ": " + v.status));
    const stages = el("p", null, "stages");
    for (const s of v.stages) {
      stages.appendChild(el("span", s.stage + " " + s.name + " " + num(s.value) + " ("
        + s.threshold + ")", s.status));
    }
    div.appendChild(stages);
    return div;
  }));
}

function showRisk(st) {
  const r = st.risk;
  $("risk-summary").textContent = r ? "regime " + r.regime + ", allocator " + r.allocator_mode
    + "; " + r.changes + " change(s), last " + (r.last_change || "none")
    + (r.pending ? "; pending " + r.pending.id : "") : "config values (no risk step has run)";
  fillRows($("limits").tBodies[0], (r ? r.limits : []).map((l) => {
    const share = l.ceiling ? l.value / l.ceiling : null;
    return [l.name, numCell(+l.value.toPrecision(6)), numCell(+l.effective.toPrecision(6)),
      numCell(l.ceiling === null ? "none" : l.ceiling),
      el("td", share === null ? "no ceiling" : (share * 100).toFixed(0) + " %",
        share === null ? "dim" : share > 1 ? "bad" : share > 0.9 ? "warn" : "good")];
  }));
}

function showAlerts(st) {
  const acked = Object.entries(st.alerts_acknowledged || {}).filter(([, v]) => v)
    .map(([k, v]) => k + " " + v).join(", ") || "none";
  $("alert-counts").textContent = Object.entries(st.alerts).map(([k, v]) => k + " " + v)
    .join(", ") + " open; acknowledged: " + acked;
  fillRows($("alert-list").tBodies[0], st.recent_alerts.map((a) => [
    a.ts, el("td", a.severity, a.severity === "critical" ? "bad" : "warn"), a.code, a.message,
    decisionButton("ack", "ack", a.id)]));
}

function showControl() {
  $("control-mode").textContent = controlEnabled ? "control enabled: enter the token"
    : "read-only: no control token configured (monitoring.control_token_env)";
  for (const b of document.querySelectorAll("button[data-action]")) b.disabled = !controlEnabled;
}

async function control(action) {
  const message = $("message");
  message.textContent = action + "…";
  message.className = "dim";
  try {
    const response = await fetch("/api/" + action, {
      method: "POST", headers: {"Authorization": "Bearer " + $("token").value},
    });
    const body = await response.json();
    message.textContent = response.status + " " + (body.message || body.error);
    message.className = response.ok ? "good" : "bad";
    message.dataset.status = String(response.status);
  } catch (err) {
    message.textContent = "request failed: " + err;
    message.className = "bad";
  }
  refresh();
}

async function refresh() {
  try {
    if (polls % CURVE_EVERY === 0) {
      const info = await (await fetch("/api/console", {cache: "no-store"})).json();
      if (info.control !== controlEnabled || polls === 0) {
        controlEnabled = info.control;
        showControl();
      }
      drawChart(info.equity_curve);
    }
    polls += 1;
    const st = await (await fetch("/api/status", {cache: "no-store"})).json();
    showOverview(st); showPaper(st); showCycle(st); showModel(st); showRisk(st); showAlerts(st);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
  } catch (err) {
    $("updated").textContent = "cannot reach the autopilot: " + err;
  }
}

for (const b of document.querySelectorAll("#control button[data-action]")) {
  b.addEventListener("click", () => control(b.dataset.action));
}
refresh();
setInterval(refresh, POLL_MS);
