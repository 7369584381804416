// longrun dashboard: plain JavaScript, no build step, no dependencies.
// It reads the native API with fetch (the key travels in the Authorization
// header, never in a URL) and follows changes over server-sent events,
// parsed from a fetch stream because EventSource cannot send headers.

import { drawStackedBars, initViews, legend, recentDeliveries, refreshView, showView } from "./views.js";

const STATES = ["NotStarted", "Running", "Succeeded", "Failed", "Canceled", "CompleteWithErrors"];
const TERMINAL = new Set(["Succeeded", "Failed", "Canceled", "CompleteWithErrors"]);
// Operations loaded per page, newest first (`/ui?pageSize=N` for another size).
const PAGE = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("pageSize")) || 500));
const BUCKET_MS = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);

// A key handed over in the fragment (`/ui#key=…`, for bookmarks and
// scripts) is taken out of the address at once; fragments never reach the server.
const handedOver = new URLSearchParams(location.hash.slice(1)).get("key");
if (handedOver) history.replaceState(null, "", location.pathname + location.search);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const session = {
  key: handedOver || sessionStorage.getItem("longrun.key"),
  me: null,
  operations: new Map(), // id -> native operation JSON
  history: new Map(), // id -> [{at, version, state, percentComplete}]
  selected: null,
  dialect: "native",
  stream: null, // AbortController of the live stream
  next: null, // the list's nextLink: older operations not loaded yet
  sort: { key: "createdAt", descending: true },
  view: "operations",
};

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${session.key}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    signOut("The key was refused (revoked or mistyped).");
    throw new Error("unauthenticated");
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error?.message || `${response.status} ${response.statusText}`);
  return body;
}

// ---- sign in / out --------------------------------------------------------

async function signIn(key) {
  session.key = key;
  try {
    session.me = await api("/v1/me");
  } catch (error) {
    $("sign-in-error").textContent = error.message === "unauthenticated" ? "That key is not valid." : error.message;
    return;
  }
  sessionStorage.setItem("longrun.key", key);
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${session.me.keyId} · ${session.me.role} · ${session.me.scope}`;
  $("views").hidden = false;
  fillScopes([]);
  await load();
}

function signOut(message = "") {
  session.stream?.abort();
  sessionStorage.removeItem("longrun.key");
  Object.assign(session, { key: null, me: null, selected: null });
  session.operations.clear();
  session.history.clear();
  $("dashboard").hidden = true;
  $("views").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("who").textContent = "";
  $("sign-in-error").textContent = message;
}

// ---- scopes and filters ---------------------------------------------------

/** A key reaches one scope or all, a token one or several; an all-scope key picks among those seen. */
function fillScopes(seen) {
  const select = $("scope");
  const current = select.value;
  const options = session.me.scope === "*" ? ["", ...new Set(seen)].sort() : session.me.scopes;
  select.replaceChildren(
    ...options.map((scope) => new Option(scope || "all scopes", scope, false, scope === current)),
  );
}

function fillKinds() {
  const select = $("kind-filter");
  const current = select.value;
  const kinds = [...new Set([...session.operations.values()].map((op) => op.kind))].sort();
  select.replaceChildren(new Option("any", ""), ...kinds.map((k) => new Option(k, k, false, k === current)));
}

function scopeQuery() {
  const scope = $("scope").value;
  return scope ? `scope=${encodeURIComponent(scope)}` : "";
}

/** The created-between window (server-side), as RFC 3339 times: [from, before). */
function createdWindow() {
  const at = (id) => ($(id).value ? new Date($(id).value).toISOString() : null);
  return { from: at("created-from"), before: at("created-before") };
}

function listQuery() {
  const { from, before } = createdWindow();
  return [scopeQuery(), from && `createdFrom=${from}`, before && `createdBefore=${before}`].filter(Boolean).join("&");
}

// ---- loading and the live stream ------------------------------------------

async function load() {
  session.stream?.abort();
  session.operations.clear();
  const page = await api(`/v1/operations?maxPageSize=${PAGE}&${listQuery()}`);
  for (const op of page.value) session.operations.set(op.id, op);
  session.next = page.nextLink || null;
  if (session.me.scope === "*" && !$("scope").value) fillScopes(page.value.map((op) => op.scope));
  fillKinds();
  render();
  follow();
}

/** The next page of older operations (the list's nextLink). */
async function loadMore() {
  if (!session.next) return;
  const page = await api(session.next);
  for (const op of page.value) if (!session.operations.has(op.id)) session.operations.set(op.id, op);
  session.next = page.nextLink || null;
  fillKinds();
  render();
}

/** Follows /v1/events until aborted, reconnecting with Last-Event-ID. */
async function follow() {
  const controller = new AbortController();
  session.stream = controller;
  let lastEventId = null;
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${session.key}`, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(`/v1/events?${scopeQuery()}`, { headers, signal: controller.signal });
      if (response.status === 401) return signOut("The key was refused (revoked?).");
      if (!response.ok) throw new Error(`events: ${response.status}`);
      setLive(true);
      for await (const event of readEvents(response.body)) {
        if (event.id) lastEventId = event.id;
        if (event.data) applyChange(JSON.parse(event.data));
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Parses a text/event-stream body into {id, event, data} records. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = {};
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (event.data !== undefined || event.id) yield event;
        event = {};
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data = event.data === undefined ? text : `${event.data}\n${text}`;
        else if (field === "id" || field === "event") event[field] = text;
      }
    }
  }
}

function setLive(on) {
  $("live").textContent = on ? "live" : "reconnecting…";
  $("live").classList.toggle("on", on);
}

function applyChange(op) {
  const known = session.operations.get(op.id);
  if (known && known.version >= op.version) return;
  session.operations.set(op.id, op);
  const seen = session.history.get(op.id) || [];
  seen.push({ at: new Date(), version: op.version, state: op.state, percentComplete: op.percentComplete });
  session.history.set(op.id, seen);
  if (!known) fillKinds();
  render();
  if (session.selected === op.id) showDetail(op.id);
  refreshSoon();
}

let refreshing = null;
/** Re-reads the view shown after a change, at most every 2 s. */
function refreshSoon() {
  if (session.view === "operations" || refreshing) return;
  refreshing = setTimeout(() => {
    refreshing = null;
    refreshView();
  }, 2000);
}

// ---- rendering ------------------------------------------------------------

function visible() {
  const state = $("state-filter").value;
  const kind = $("kind-filter").value;
  const search = $("search").value.trim().toLowerCase();
  const { from, before } = createdWindow(); // live arrivals outside the window stay hidden
  return [...session.operations.values()]
    .filter((op) => (!state || op.state === state) && (!kind || op.kind === kind))
    .filter((op) => (!from || Date.parse(op.createdAt) >= Date.parse(from)) && (!before || Date.parse(op.createdAt) < Date.parse(before)))
    .filter((op) => !search || op.id.includes(search))
    .sort(byColumn);
}

/** The value a column sorts by. */
function sortValue(op, key) {
  if (key === "progress") return shownProgress(op) ?? -1;
  if (key === "error") return op.error ? `${op.error.code}: ${op.error.message}` : "";
  if (key === "duration") return (op.finishedAt ? Date.parse(op.finishedAt) : Date.now()) - Date.parse(op.startedAt || op.createdAt);
  return op[key] ?? "";
}

function byColumn(a, b) {
  const { key, descending } = session.sort;
  const [x, y] = [sortValue(a, key), sortValue(b, key)];
  const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
  return (descending ? -order : order) || b.createdAt.localeCompare(a.createdAt);
}

function sortBy(key) {
  const same = session.sort.key === key;
  session.sort = { key, descending: same ? !session.sort.descending : key === "createdAt" || key === "lastActionAt" };
  for (const th of $("operations").tHead.rows[0].cells) {
    if (th.dataset.sort === key) th.setAttribute("aria-sort", session.sort.descending ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
  render();
}

/** A full id not among those loaded is looked up on the server. */
async function search() {
  const text = $("search").value.trim().toLowerCase();
  if (UUID.test(text) && !session.operations.has(text)) {
    try {
      applyChange(await api(`/v1/operations/${text}`));
    } catch {
      // not found, or out of the key's reach: the list stays empty
    }
  }
  render();
}

/** The progress a row shows: what the state implies once it is final. */
function shownProgress(op) {
  if (op.state === "Succeeded" || op.state === "CompleteWithErrors") return 100;
  if (op.state === "Failed" || op.state === "Canceled") return null; // ended early: no bar
  return op.percentComplete ?? 0;
}

function duration(op) {
  const start = Date.parse(op.startedAt || op.createdAt);
  const end = op.finishedAt ? Date.parse(op.finishedAt) : Date.now();
  return span(Math.max(0, Math.round((end - start) / 1000))) + (op.finishedAt ? "" : "…");
}

function render() {
  const rows = visible().map((op) => {
    const row = document.createElement("tr");
    row.dataset.id = op.id;
    row.dataset.state = op.state;
    row.classList.toggle("selected", op.id === session.selected);
    const progress = shownProgress(op);
    row.innerHTML = `<td class="id"><span></span><button type="button" title="copy the id">copy</button></td>
      <td></td><td></td><td><span class="state"></span></td>
      <td><span class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div></div></span> <span class="pct"></span></td>
      <td class="error"></td><td class="duration"></td><td></td><td></td>`;
    const cells = row.children;
    cells[0].firstChild.textContent = op.id;
    cells[0].querySelector("button").addEventListener("click", (event) => {
      event.stopPropagation();
      navigator.clipboard?.writeText(op.id).catch(() => {});
    });
    cells[1].textContent = op.scope;
    cells[2].textContent = op.kind;
    cells[3].firstChild.textContent = op.state;
    cells[3].firstChild.classList.add(op.state);
    const bar = cells[4].querySelector(".bar");
    if (progress === null) {
      bar.remove();
      cells[4].querySelector(".pct").textContent = "—";
    } else {
      bar.setAttribute("aria-valuenow", String(progress));
      bar.firstChild.style.width = `${progress}%`;
      cells[4].querySelector(".pct").textContent = `${Math.round(progress)}%`;
    }
    if (op.error) {
      cells[5].textContent = `${op.error.code}: ${op.error.message}`;
      cells[5].title = cells[5].textContent;
    }
    cells[6].textContent = duration(op);
    cells[7].textContent = ago(op.createdAt);
    cells[8].textContent = ago(op.lastActionAt);
    row.addEventListener("click", () => showDetail(op.id));
    return row;
  });
  $("operations").tBodies[0].replaceChildren(...rows);
  $("loaded").textContent = `${session.operations.size} loaded${session.next ? "; older ones on the server" : " (all)"}`;
  $("more").hidden = !session.next;
  renderCounts();
  renderChart();
}

function renderCounts() {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const op of session.operations.values()) counts[op.state] += 1;
  $("counts").replaceChildren(
    ...STATES.filter((s) => counts[s] > 0).map((s) => {
      const span = document.createElement("span");
      span.dataset.state = s;
      span.innerHTML = `<span class="state ${s}">${s}</span> <b></b>`;
      span.querySelector("b").textContent = counts[s];
      return span;
    }),
  );
}

/** Operations created in each 5-minute slot of the last hour, by state now. */
function renderChart() {
  const now = Date.now();
  const slots = Array.from({ length: 12 }, () => Object.fromEntries(STATES.map((s) => [s, 0])));
  for (const op of session.operations.values()) {
    const slot = 11 - Math.floor((now - Date.parse(op.createdAt)) / BUCKET_MS);
    if (slot >= 0 && slot < 12) slots[slot][op.state] += 1;
  }
  drawStackedBars($("chart"), slots, STATES, (i) => (i === 12 ? "now" : `-${(12 - i) * 5}m`));
  $("legend").replaceChildren(...legend(STATES));
}

function ago(timestamp) {
  return `${span(Math.max(0, Math.round((Date.now() - Date.parse(timestamp)) / 1000)))} ago`;
}

function span(seconds) {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

// ---- detail pane ----------------------------------------------------------

/** The status URL of each API an operation can be read through. */
function dialectsOf(op) {
  const id = op.id;
  const [kind, name] = op.scope.split("/");
  const dialects = { native: { url: `/v1/operations/${id}` } };
  if (kind === "tenants") dialects.sphere = { url: `/v2/tenants/${name}/operations/${id}` };
  if (kind === "projects")
    dialects.devcenter = { url: `/projects/${name}/operationstatuses/${id}?api-version=2025-02-01` };
  if (kind === "accounts")
    dialects.face = { url: `/face/v1.0-preview/operations/${id}`, header: "Ocp-Apim-Subscription-Key" };
  dialects.google = { url: `/v1/${op.scope}/operations/${id}` }; // every scope: google.longrunning's name
  return dialects;
}

async function showDetail(id) {
  session.selected = id;
  const op = session.operations.get(id);
  if (!op) return;
  for (const row of $("operations").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  $("detail").hidden = false;
  $("detail-title").textContent = `${op.kind} ${op.id}`;
  const dialects = dialectsOf(op);
  if (!dialects[session.dialect]) session.dialect = "native";
  $("dialects").replaceChildren(
    ...Object.keys(dialects).map((name) => {
      const button = document.createElement("button");
      button.textContent = name;
      button.setAttribute("aria-pressed", String(name === session.dialect));
      button.addEventListener("click", () => {
        session.dialect = name;
        showDetail(id);
      });
      return button;
    }),
  );
  const facts = [`attempts ${op.attempts ?? 0}`];
  if (op.lease) facts.push(`held by ${op.lease.owner}, lease lapses in ${span(Math.max(0, Math.round((Date.parse(op.lease.expiresAt) - Date.now()) / 1000)))}`);
  if (op.traceparent) facts.push(`trace ${op.traceparent.split("-")[1]}`);
  $("detail-facts").textContent = facts.join(" · ");
  showDeliveries(id);
  const canCancel = session.me.role !== "read" && !TERMINAL.has(op.state);
  $("cancel").hidden = !canCancel;
  $("history").replaceChildren(
    ...(session.history.get(id) || []).map((h) => {
      const item = document.createElement("li");
      const pct = h.percentComplete === undefined ? "" : ` ${h.percentComplete}%`;
      item.textContent = `${h.at.toLocaleTimeString()} v${h.version} ${h.state}${pct}`;
      return item;
    }),
  );
  const { url, header } = dialects[session.dialect];
  const headers = header ? { [header]: session.key } : { Authorization: `Bearer ${session.key}` };
  const response = await fetch(url, { headers });
  if (session.selected !== id) return;
  const text = await response.text();
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {}
  $("detail-json").textContent = `GET ${url}\n${response.status}\n\n${pretty}`;
}

/** The webhook deliveries of one operation (admin keys only). */
async function showDeliveries(id) {
  const list = $("detail-deliveries");
  if (session.me.role !== "admin") {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: "(an admin key sees deliveries)" }));
    return;
  }
  try {
    const hooks = (await api("/v1/webhooks")).value;
    const mine = (await recentDeliveries(hooks)).filter((d) => d.operationId === id);
    if (session.selected !== id) return;
    list.replaceChildren(
      ...mine.map((d) => {
        const item = document.createElement("li");
        const status = d.lastStatus ? ` ${d.lastStatus}` : "";
        item.textContent = `v${d.version} → ${d.hookId}: ${d.state}${status}, ${d.attempts} attempt(s)${d.lastError ? ` (${d.lastError})` : ""}`;
        return item;
      }),
    );
    if (mine.length === 0) list.replaceChildren(Object.assign(document.createElement("li"), { textContent: "none" }));
  } catch (error) {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: error.message }));
  }
}

/** Opens an operation from another view in the operations view. */
async function openOperation(id) {
  if (!session.operations.has(id)) {
    try {
      applyChange(await api(`/v1/operations/${id}`));
    } catch {
      return;
    }
  }
  await showView("operations");
  showDetail(id);
}

async function cancelSelected() {
  $("detail-error").textContent = "";
  try {
    const op = await api(`/v1/operations/${session.selected}:cancel`, { method: "POST" });
    applyChange(op);
  } catch (error) {
    $("detail-error").textContent = error.message;
  }
}

// ---- wiring ---------------------------------------------------------------

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("key").value.trim());
});
$("sign-out").addEventListener("click", () => signOut());
$("scope").addEventListener("change", () => load().then(refreshView));
$("state-filter").addEventListener("change", render);
$("created-from").addEventListener("change", load);
$("created-before").addEventListener("change", load);
$("kind-filter").addEventListener("change", render);
$("search").addEventListener("input", search);
$("more").addEventListener("click", loadMore);
for (const th of $("operations").tHead.rows[0].cells) th.addEventListener("click", () => sortBy(th.dataset.sort));
$("cancel").addEventListener("click", () => {
  if (confirm("Cancel this operation? Its worker is told to stop.")) cancelSelected();
});
initViews({ api, session, $, span, ago, openOperation });
setInterval(() => session.me && render(), 5000);
if (session.key) signIn(session.key);
