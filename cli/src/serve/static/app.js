// The AUTOOS dashboard: plain JavaScript over the /v1 API.
"use strict";

const main = document.getElementById("main");
let token = localStorage.getItem("aosToken") || "";
let stopStream = null;

document.getElementById("token").value = token;
document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token").value.trim();
  localStorage.setItem("aosToken", token);
  route();
});

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function api(path, opts) {
  const o = Object.assign({}, opts || {});
  o.headers = headers(o.headers);
  const r = await fetch(path, o);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function usd(x) {
  return "$" + Number(x || 0).toFixed(6);
}

// ---- the list of runs ----
async function showList() {
  let timer = null;
  async function draw() {
    try {
      const data = await api("/v1/runs?limit=100");
      const rows = data.runs.map((r) =>
        `<tr><td><a href="#/runs/${esc(r.run_id)}">${esc(r.run_id)}</a></td><td>${esc(r.workflow)}</td>` +
        `<td class="status s-${esc(r.status)}">${esc(r.status)}</td><td>${esc(r.started_at)}</td><td>${usd(r.cost_usd)}</td></tr>`).join("");
      main.innerHTML = `<h2>Runs (${data.total})</h2><table id="runs"><tr><th>run</th><th>workflow</th><th>status</th><th>started</th><th>cost</th></tr>${rows}</table>`;
    } catch (e) {
      main.innerHTML = `<p class="error">${esc(e.message)}</p>`;
    }
  }
  await draw();
  timer = setInterval(draw, 2000);
  return () => clearInterval(timer);
}

// ---- one run ----
function layers(steps) {
  const depth = {};
  const byName = {};
  steps.forEach((s) => (byName[s.name] = s));
  function d(name, seen) {
    if (depth[name] != null) return depth[name];
    if (seen[name]) return 0;
    seen[name] = true;
    const s = byName[name];
    const v = s && s.deps.length ? 1 + Math.max(...s.deps.map((x) => d(x, seen))) : 0;
    depth[name] = v;
    return v;
  }
  steps.forEach((s) => d(s.name, {}));
  const out = [];
  steps.forEach((s) => (out[depth[s.name]] = out[depth[s.name]] || []).push(s));
  return out;
}

async function streamEvents(id, onEvent) {
  const ctrl = new AbortController();
  let lastId = "";
  (async () => {
    while (!ctrl.signal.aborted) {
      try {
        const h = headers({ Accept: "text/event-stream" });
        if (lastId) h["Last-Event-ID"] = lastId;
        const r = await fetch(`/v1/runs/${encodeURIComponent(id)}/events`, { headers: h, signal: ctrl.signal });
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let data = "";
            block.split("\n").forEach((line) => {
              if (line.startsWith("id:")) lastId = line.slice(3).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            });
            if (data) onEvent(JSON.parse(data));
          }
        }
        return; // the run ended: the server closed the stream
      } catch (e) {
        if (ctrl.signal.aborted) return;
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  })();
  return () => ctrl.abort();
}

async function showRun(id) {
  let graph;
  try {
    graph = await api(`/v1/runs/${encodeURIComponent(id)}/graph`);
  } catch (e) {
    main.innerHTML = `<p class="error">${esc(e.message)}</p>`;
    return () => {};
  }
  const log = [];
  async function draw() {
    let run;
    try {
      run = await api(`/v1/runs/${encodeURIComponent(id)}`);
    } catch (e) {
      main.innerHTML = `<p class="error">${esc(e.message)}</p>`;
      return;
    }
    const byStep = {};
    run.steps.forEach((s) => (byStep[s.name] = s));
    const budget = graph.budget_usd || graph.cost_bound_usd || 0;
    const cols = layers(graph.steps).map((layer) =>
      `<div class="layer">` + layer.map((g) => {
        const s = byStep[g.name] || { status: "pending", attempts: 0, cost_usd: 0 };
        const pct = budget > 0 ? Math.min(100, (100 * s.cost_usd) / budget) : 0;
        const gate = s.status === "waiting_approval"
          ? `<div><button class="approve" data-step="${esc(g.name)}">Approve</button><button class="deny" data-step="${esc(g.name)}">Deny</button></div>` : "";
        return `<div class="node s-${esc(s.status)}" id="step-${esc(g.name)}" data-status="${esc(s.status)}"><div class="name">${esc(g.name)}</div>` +
          `<div class="meta">${esc(g.kind)} · <span class="status s-${esc(s.status)}">${esc(s.status)}</span> · attempts ${s.attempts}</div>` +
          `<div class="meta">cost ${usd(s.cost_usd)} of budget ${usd(budget)}${g.deps.length ? " · after " + esc(g.deps.join(", ")) : ""}</div>` +
          `<div class="bar"><div style="width:${pct}%"></div></div>${gate}</div>`;
      }).join("") + `</div>`).join("");
    main.innerHTML =
      `<h2>Run ${esc(run.run_id)}</h2>` +
      `<p>workflow <b>${esc(run.workflow)}</b> · status <span id="run-status" data-status="${esc(run.status)}" class="status s-${esc(run.status)}">${esc(run.status)}</span>` +
      ` · cost ${usd(run.cost_usd)} of budget ${usd(budget)} (worst case ${usd(graph.cost_bound_usd)}) · trust ${esc(run.trust)}` +
      ` · audit <span id="audit">${graph.audit.intact ? "intact, " + graph.audit.records + " records" : "BROKEN: " + esc(graph.audit.reason)}</span></p>` +
      (run.error ? `<p class="error">${esc(run.error)}</p>` : "") +
      `<div id="graph">${cols}</div>` +
      (run.output != null ? `<h3>Output</h3><pre id="output">${esc(typeof run.output === "string" ? run.output : JSON.stringify(run.output, null, 2))}</pre>` : "") +
      `<h3>Events</h3><div id="log">${log.map(esc).join("<br>")}</div>`;
    main.querySelectorAll("button.approve, button.deny").forEach((b) =>
      b.addEventListener("click", async () => {
        const verb = b.classList.contains("approve") ? "approve" : "deny";
        b.disabled = true;
        try {
          await api(`/v1/runs/${encodeURIComponent(id)}/${verb}`, {
            method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ step: b.dataset.step, by: "dashboard" }),
          });
        } catch (e) {
          alert(e.message);
        }
        draw();
      }));
  }
  await draw();
  let pending = null;
  const stop = await streamEvents(id, (ev) => {
    log.push(`${new Date(ev.at_ms).toISOString()} ${ev.kind}${ev.step ? " " + ev.step : ""}`);
    if (!pending) pending = setTimeout(async () => { pending = null; try { graph = await api(`/v1/runs/${encodeURIComponent(id)}/graph`); } catch (e) { /* keep the last graph */ } draw(); }, 100);
  });
  return stop;
}

async function route() {
  if (stopStream) stopStream();
  stopStream = null;
  const m = location.hash.match(/^#\/runs\/([^/]+)$/);
  stopStream = m ? await showRun(decodeURIComponent(m[1])) : await showList();
}

window.addEventListener("hashchange", route);
route();
