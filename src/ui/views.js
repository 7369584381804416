// The dashboard's other views: workers and leases, per-kind metrics, and
// webhooks; plus the stacked-bar chart they and the operations view draw.
// Each view reads the native API when it is shown (server-side filters and
// paging), never only what the operations list happened to load.

const SVG = "http://www.w3.org/2000/svg";
const OUTCOMES = ["Succeeded", "CompleteWithErrors", "Failed", "Canceled"];
// The most pages of 1,000 the metrics view reads for one window.
const METRICS_PAGES = 20;

let ctx; // { api, session, $, span, ago, openOperation }

export function initViews(context) {
  ctx = context;
  for (const button of document.querySelectorAll("#views button")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  ctx.$("metrics-window").addEventListener("change", () => showView("metrics"));
}

/** Shows one view and refreshes it. */
export async function showView(name) {
  ctx.session.view = name;
  for (const button of document.querySelectorAll("#views button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === name));
  }
  for (const view of ["operations", "workers", "metrics", "webhooks"]) ctx.$(`view-${view}`).hidden = view !== name;
  for (const control of document.querySelectorAll(".ops-only")) control.hidden = name !== "operations";
  await refreshView();
}

/** Re-reads the view shown (the live stream calls this, at most every 2 s). */
export async function refreshView() {
  const view = ctx.session.view;
  try {
    if (view === "workers") await renderWorkers();
    if (view === "metrics") await renderMetrics();
    if (view === "webhooks") await renderWebhooks();
  } catch (error) {
    if (error.message !== "unauthenticated") ctx.$(`${view}-error`).textContent = error.message;
  }
}

/** Every operation a list query names, following nextLink up to `pages` pages. */
async function listAll(query, pages, stopAt = () => false) {
  const found = [];
  let next = `/v1/operations?maxPageSize=1000&${query}`;
  for (let page = 0; next && page < pages; page++) {
    const body = await ctx.api(next);
    found.push(...body.value);
    if (body.value.some(stopAt)) break;
    next = body.nextLink;
  }
  return { found, complete: !next };
}

function scoped(query) {
  const scope = ctx.$("scope").value;
  return [query, scope && `scope=${encodeURIComponent(scope)}`].filter(Boolean).join("&");
}

/** A table body from rows of cells (text, or a node); a row's first cell opens the operation. */
function fill(table, rows, empty) {
  const body = ctx.$(table).tBodies[0];
  if (rows.length === 0) {
    const row = body.ownerDocument.createElement("tr");
    row.innerHTML = `<td class="empty"></td>`;
    row.firstChild.colSpan = ctx.$(table).tHead.rows[0].cells.length;
    row.firstChild.textContent = empty;
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(
    ...rows.map(({ id, cells, className }) => {
      const row = body.ownerDocument.createElement("tr");
      if (className) row.className = className;
      for (const cell of cells) {
        const td = row.insertCell();
        if (cell instanceof Node) td.append(cell);
        else td.textContent = cell ?? "";
      }
      if (id) {
        row.dataset.id = id;
        row.addEventListener("click", () => ctx.openOperation(id));
      }
      return row;
    }),
  );
}

// ---- workers and leases ------------------------------------------------------

async function renderWorkers() {
  ctx.$("workers-error").textContent = "";
  const [running, failed] = await Promise.all([
    listAll(scoped("state=Running"), 5),
    listAll(scoped("state=Failed"), 2),
  ]);
  const now = Date.now();
  const held = running.found.filter((op) => op.lease).sort((a, b) => a.lease.expiresAt.localeCompare(b.lease.expiresAt));
  fill(
    "leases",
    held.map((op) => {
      const left = Math.round((Date.parse(op.lease.expiresAt) - now) / 1000);
      return {
        id: op.id,
        className: left < 10 ? "lapsing" : "",
        cells: [op.id, op.kind, op.lease.owner, op.attempts, `${Math.round(op.percentComplete ?? 0)}%`,
          left > 0 ? ctx.span(left) : "lapsed", ctx.ago(op.lastActionAt)],
      };
    }),
    "No operation is held by a worker now.",
  );
  const workers = new Map();
  for (const op of held) workers.set(op.lease.owner, (workers.get(op.lease.owner) || 0) + 1);
  ctx.$("workers-summary").textContent =
    `${held.length} lease(s) held by ${workers.size} worker(s)` +
    (workers.size ? `: ${[...workers].map(([w, n]) => `${w} (${n})`).join(", ")}` : "") +
    `; ${held.filter((op) => Date.parse(op.lease.expiresAt) - now < 10_000).length} lapsing within 10 s.`;
  // Attempts past the first: a lease lapsed (or was released) before.
  const retried = running.found.filter((op) => op.attempts > 1);
  fill("retried", retried.map((op) => ({ id: op.id, cells: [op.id, op.kind, op.state, op.attempts] })),
    "No running operation is on a second attempt.");
  const lost = failed.found.filter((op) => op.error?.code === "WorkerLost");
  fill("worker-lost", lost.map((op) => ({ id: op.id, cells: [op.id, op.kind, op.attempts, ctx.ago(op.finishedAt)] })),
    "No operation failed because its workers were lost.");
}

// ---- metrics per kind -------------------------------------------------------

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function renderMetrics() {
  ctx.$("metrics-error").textContent = "";
  const windowMs = Number(ctx.$("metrics-window").value) * 60_000;
  const since = Date.now() - windowMs;
  const { found, complete } = await listAll(scoped(""), METRICS_PAGES, (op) => Date.parse(op.createdAt) < since);
  const inWindow = found.filter((op) => Date.parse(op.createdAt) >= since);
  const kinds = new Map();
  for (const op of inWindow) {
    const k = kinds.get(op.kind) || { created: 0, finished: 0, Succeeded: 0, CompleteWithErrors: 0, Failed: 0, Canceled: 0, durations: [] };
    k.created += 1;
    if (op.finishedAt) {
      k.finished += 1;
      k[op.state] += 1;
      k.durations.push((Date.parse(op.finishedAt) - Date.parse(op.startedAt || op.createdAt)) / 1000);
    }
    kinds.set(op.kind, k);
  }
  const seconds = (s) => (s === null ? "—" : s < 10 ? `${s.toFixed(2)}s` : ctx.span(Math.round(s)));
  fill(
    "kinds",
    [...kinds].sort(([a], [b]) => a.localeCompare(b)).map(([kind, k]) => {
      const sorted = k.durations.sort((a, b) => a - b);
      const failureRate = k.finished ? `${Math.round((100 * k.Failed) / k.finished)}%` : "—";
      return { cells: [kind, k.created, k.finished, k.Succeeded + k.CompleteWithErrors, k.Failed, k.Canceled, failureRate,
        seconds(percentile(sorted, 50)), seconds(percentile(sorted, 95))] };
    }),
    "No operation was created in this window.",
  );
  ctx.$("metrics-note").textContent = complete || found.some((op) => Date.parse(op.createdAt) < since)
    ? `${inWindow.length} operation(s) created in the window.`
    : `The newest ${found.length} operations only: the window holds more.`;
  // Throughput: operations finished per slot, by outcome.
  const slots = 12;
  const slotMs = windowMs / slots;
  const bars = Array.from({ length: slots }, () => Object.fromEntries(OUTCOMES.map((s) => [s, 0])));
  for (const op of found) {
    if (!op.finishedAt) continue;
    const slot = slots - 1 - Math.floor((Date.now() - Date.parse(op.finishedAt)) / slotMs);
    if (slot >= 0 && slot < slots) bars[slot][op.state] += 1;
  }
  const minutes = windowMs / 60_000;
  const label = (i) => (i === slots ? "now" : `-${ctx.span(Math.round(((slots - i) * minutes * 60) / slots))}`);
  drawStackedBars(ctx.$("throughput"), bars, OUTCOMES, label);
  ctx.$("throughput-legend").replaceChildren(...legend(OUTCOMES));
}

// ---- webhooks -------------------------------------------------------------

async function renderWebhooks() {
  ctx.$("webhooks-error").textContent = "";
  if (ctx.session.me.role !== "admin") {
    ctx.$("webhooks-error").textContent = "Webhooks and their deliveries need an admin key.";
    fill("hooks", [], "—");
    fill("deliveries", [], "—");
    return;
  }
  const hooks = (await ctx.api("/v1/webhooks")).value;
  fill("hooks", hooks.map((h) => ({ cells: [h.id, h.scope || "every scope", h.url, h.events, ctx.ago(h.createdAt)] })),
    "No webhook is registered.");
  const deliveries = await recentDeliveries(hooks);
  fill(
    "deliveries",
    deliveries.map((d) => ({
      id: d.operationId,
      className: d.state,
      cells: [d.hookId, d.operationId, `v${d.version}`, d.state, d.attempts, d.lastStatus ?? "", d.lastError ?? "",
        d.state === "pending" && d.nextAttemptAt ? ctx.span(Math.max(0, Math.round((Date.parse(d.nextAttemptAt) - Date.now()) / 1000))) : ""],
    })),
    "No delivery yet.",
  );
}

/** Every hook's deliveries, newest first. */
export async function recentDeliveries(hooks) {
  const pages = await Promise.all(hooks.map((h) => ctx.api(`/v1/webhooks/${h.id}/deliveries`)));
  return pages
    .flatMap((page, i) => page.value.map((d) => ({ ...d, hookId: hooks[i].id })))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

// ---- the chart ------------------------------------------------------------

/** Legend items, one per series, coloured as the states are. */
export function legend(series) {
  return series.map((s) => {
    const item = document.createElement("span");
    item.className = `state ${s}`;
    item.textContent = s;
    return item;
  });
}

/** 1, 2, 5, 10, 20, 50…: the smallest at or above `n`, for an axis. */
function niceCeiling(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= n);
}

/** Stacked bars in a 420 × 130 view box: one bar per slot, one colour per series, a y axis (0, half, top) and x labels. */
export function drawStackedBars(svg, slots, series, xLabel) {
  const most = Math.max(1, ...slots.map((slot) => series.reduce((sum, s) => sum + slot[s], 0)));
  const top = niceCeiling(most);
  const [left, right, floor, ceiling] = [34, 414, 108, 8];
  const step = (right - left) / slots.length;
  const parts = [];
  const el = (name, attributes, text) => {
    const node = document.createElementNS(SVG, name);
    Object.entries(attributes).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    parts.push(node);
    return node;
  };
  for (const value of Number.isInteger(top / 2) ? [0, top / 2, top] : [0, top]) {
    const y = floor - (value / top) * (floor - ceiling);
    el("line", { x1: left, x2: right, y1: y, y2: y, class: "grid" });
    el("text", { x: left - 4, y: y + 3, "text-anchor": "end", class: "y-label" }, String(value));
  }
  for (let i = 0; i <= slots.length; i += 3) {
    const anchor = i === slots.length ? "end" : "middle";
    el("text", { x: left + i * step, y: floor + 14, "text-anchor": anchor, class: "x-label" }, xLabel(i));
  }
  slots.forEach((slot, i) => {
    let y = floor;
    for (const name of series) {
      const height = (slot[name] / top) * (floor - ceiling);
      if (height === 0) continue;
      y -= height;
      const rect = el("rect", { x: left + i * step + 2, y, width: step - 4, height, class: name });
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${slot[name]} ${name}`;
      rect.append(title);
    }
  });
  svg.replaceChildren(...parts);
}
