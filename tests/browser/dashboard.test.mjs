// The dashboard in a real browser (Debian's Chromium, driven by
// playwright-core) against a real `longrun serve` on a fresh data dir:
// sign in, see an operation appear live, watch its progress bar move as a
// producer PATCHes it, cancel another, and keep a screenshot.
//
//   LONGRUN_BIN=target/debug/longrun node --test tests/browser/dashboard.test.mjs
//
// The screenshot goes to $LONGRUN_SCREENSHOT (default
// target/browser-artifacts/dashboard.png), one per view beside it;
// docs/dashboard.png is a copy, and LONGRUN_DOCS_SCREENSHOTS=1 refreshes
// docs/dashboard-{workers,metrics,webhooks,detail}.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { chromium } from "playwright-core";

const repo = resolve(import.meta.dirname, "../..");
const bin = resolve(repo, process.env.LONGRUN_BIN || "target/debug/longrun");
const screenshot = resolve(repo, process.env.LONGRUN_SCREENSHOT || "target/browser-artifacts/dashboard.png");
const SCOPE = "projects/browser";
const WAIT = { timeout: 10_000 };

let server, base, dataDir, browser, page, producerKey, readerKey, adminKey;
const problems = []; // console errors and uncaught page errors, from every test
const made = {}; // operations the live test makes, for the later checks

function key(scope, role) {
  return execFileSync(bin, ["key", "create", "--scope", scope, "--role", role, "--data-dir", dataDir])
    .toString()
    .trim();
}

async function call(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${producerKey}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

const create = (kind) => call("POST", "/v1/operations", { scope: SCOPE, kind });
const patch = (id, changes) => call("PATCH", `/v1/operations/${id}`, changes);
const row = (id) => `tr[data-id="${id}"]`;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "longrun-ui-"));
  producerKey = key(SCOPE, "produce");
  readerKey = key("projects/elsewhere", "read");
  adminKey = key(SCOPE, "admin");
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  base = await new Promise((resolveBase, reject) => {
    let seen = "";
    const look = (chunk) => {
      seen += chunk;
      const found = seen.match(/listening on (http:\/\/[0-9.:]+)/);
      if (found) resolveBase(found[1]);
    };
    server.stdout.on("data", look);
    server.stderr.on("data", look);
    server.on("exit", (code) => reject(new Error(`longrun serve exited with ${code}:\n${seen}`)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  page.on("pageerror", (error) => problems.push(`page error: ${error}`));
  page.on("console", (message) => {
    // A refused key's 401 is the browser logging a failed fetch the page expects.
    if (message.type() === "error" && !/status of 401/.test(message.text())) problems.push(message.text());
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("a wrong key is refused and nothing is shown", async () => {
  await page.goto(`${base}/ui`);
  const help = await page.locator("[data-testid=key-help]").textContent();
  assert.match(help, /longrun key create --scope .* --role read/, "the sign-in page says how to make a key");
  assert.match(help, /produce.*cancels/s, "and which role each action needs");
  await page.fill("#key", "lr_not-a-key");
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#sign-in-error:has-text('not valid')", WAIT);
  assert.equal(await page.isVisible("#dashboard"), false);
});

test("a key limited to another scope sees none of this scope's operations", async () => {
  await create("deleteDevBox");
  await page.fill("#key", readerKey);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("[data-testid=live]:has-text('live')", WAIT);
  assert.deepEqual(await page.$$eval("#scope option", (os) => os.map((o) => o.value)), ["projects/elsewhere"]);
  assert.equal(await page.locator("#operations tbody tr").count(), 0);
  assert.equal(await page.isVisible("#cancel"), false);
  await page.click("#sign-out");
});

test("signs in, sees operations appear and progress live, cancels one", async () => {
  await page.fill("#key", producerKey);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("[data-testid=who]:has-text('produce')", WAIT);
  await page.waitForSelector("[data-testid=live]:has-text('live')", WAIT);
  // The key session lives in session storage, never in the address.
  assert.ok(!page.url().includes(producerKey));
  assert.equal(await page.evaluate(() => sessionStorage.getItem("longrun.key")), producerKey);

  // Created after the page loaded: it can only arrive over the event stream.
  const upload = await create("deleteDevBox");
  await page.waitForSelector(row(upload.id), WAIT);
  await patch(upload.id, { state: "Running", percentComplete: 40 });
  await page.waitForSelector(`${row(upload.id)} .bar[aria-valuenow="40"]`, WAIT);
  await patch(upload.id, { percentComplete: 75 });
  await page.waitForSelector(`${row(upload.id)} .bar[aria-valuenow="75"]`, WAIT);
  const width = await page.$eval(`${row(upload.id)} .bar > div`, (bar) => bar.style.width);
  assert.equal(width, "75%");

  // Some history for the chart and the counts.
  const done = await create("createDevBox");
  await patch(done.id, { state: "Succeeded" });
  const failed = await create("createDevBox");
  await patch(failed.id, { state: "Failed", error: { code: "QuotaExceeded", message: "No capacity" } });
  Object.assign(made, { done, failed, upload });
  await page.waitForSelector(`${row(failed.id)}[data-state="Failed"]`, WAIT);

  // Cancel from the detail pane.
  const doomed = await create("deleteDevBox");
  await page.click(row(doomed.id), WAIT);
  await page.waitForSelector("[data-testid=detail-json]:has-text('NotStarted')", WAIT);
  // A cancel asks first: dismissed, nothing happens.
  page.once("dialog", (dialog) => dialog.dismiss());
  await page.click("[data-testid=cancel]");
  await page.waitForTimeout(300);
  assert.equal(await page.getAttribute(row(doomed.id), "data-state"), "NotStarted", "a dismissed cancel cancels nothing");
  page.once("dialog", (dialog) => dialog.accept());
  await page.click("[data-testid=cancel]");
  await page.waitForSelector(`${row(doomed.id)}[data-state="Canceled"]`, WAIT);
  const stored = await fetch(`${base}/v1/operations/${doomed.id}`, {
    headers: { Authorization: `Bearer ${producerKey}` },
  }).then((r) => r.json());
  assert.equal(stored.state, "Canceled");
  assert.equal(await page.isVisible("[data-testid=cancel]"), false, "no cancel button on a finished operation");

  // The detail pane reads the operation through its dialect too.
  await page.click(row(upload.id));
  await page.click("#dialects button:has-text('devcenter')");
  await page.waitForSelector("[data-testid=detail-json]:has-text('operationstatuses')", WAIT);
  await page.waitForSelector("[data-testid=detail-json]:has-text('\"status\": \"Running\"')", WAIT);
  await page.waitForSelector("[data-testid=history] li", WAIT);
  await page.click("#dialects button:has-text('google')");
  await page.waitForSelector(`[data-testid=detail-json]:has-text('"name": "${SCOPE}/operations/${upload.id}"')`, WAIT);
  await page.waitForSelector("[data-testid=detail-json]:has-text('\"done\": false')", WAIT);

  // Filters and the per-state summary.
  await page.selectOption("#state-filter", "Failed");
  assert.equal(await page.locator("#operations tbody tr").count(), 1);
  await page.selectOption("#state-filter", "");
  assert.equal(await page.locator("[data-testid=counts] [data-state=Canceled] b").textContent(), "1");
  assert.ok((await page.locator("#chart rect").count()) >= 3, "the chart draws a bar per state present");

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
});

test("search, errors, final progress, and nothing cut off at 1024 and 1280 px", async () => {
  const { done, failed, upload } = made;
  // A finished operation shows the progress its state implies.
  await page.waitForSelector(`${row(done.id)} .bar[aria-valuenow="100"]`, WAIT);
  assert.equal(await page.locator(`${row(failed.id)} .bar`).count(), 0, "a failure draws no bar");
  assert.equal(await page.locator(`${row(failed.id)} td.error`).textContent(), "QuotaExceeded: No capacity");
  assert.equal(await page.locator(`${row(failed.id)} td.id span`).textContent(), failed.id, "the full id");

  // Search by part of an id, then by a whole one.
  await page.fill("#search", failed.id.slice(-6));
  await page.waitForFunction(() => document.querySelectorAll("#operations tbody tr").length === 1, null, WAIT);
  assert.equal(await page.locator(row(failed.id)).count(), 1);
  await page.fill("#search", done.id);
  await page.waitForFunction(() => document.querySelectorAll("#operations tbody tr").length === 1, null, WAIT);
  assert.equal(await page.locator(row(done.id)).count(), 1);
  await page.fill("#search", "");

  // Created between: a window after every operation shows none, one around them all of them.
  const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const count = () => page.locator("#operations tbody tr").count();
  const all = await count();
  await page.fill("#created-from", local(Date.now() + 3_600_000));
  await page.dispatchEvent("#created-from", "change");
  await page.waitForFunction(() => document.querySelectorAll("#operations tbody tr").length === 0, null, WAIT);
  await page.fill("#created-from", local(Date.now() - 3_600_000));
  await page.fill("#created-before", local(Date.now() + 3_600_000));
  await page.dispatchEvent("#created-before", "change");
  await page.waitForFunction((n) => document.querySelectorAll("#operations tbody tr").length === n, all, WAIT);
  await page.fill("#created-from", "");
  await page.fill("#created-before", "");
  await page.dispatchEvent("#created-before", "change");
  await page.waitForFunction((n) => document.querySelectorAll("#operations tbody tr").length === n, all, WAIT);

  for (const width of [1024, 1280]) {
    await page.setViewportSize({ width, height: 800 });
    await page.click(row(upload.id));
    await page.waitForSelector("[data-testid=detail-json]:has-text('GET')", WAIT);
    const overflow = await page.evaluate(() => {
      const right = Math.max(...[...document.querySelectorAll("#detail, #detail-title, #detail-json")].map((e) => e.getBoundingClientRect().right));
      return { page: document.documentElement.scrollWidth - window.innerWidth, detail: right - window.innerWidth };
    });
    assert.ok(overflow.page <= 0, `the page scrolls sideways at ${width} px by ${overflow.page} px`);
    assert.ok(overflow.detail <= 0, `the detail pane is cut off at ${width} px by ${overflow.detail} px`);
  }
  await page.setViewportSize({ width: 1400, height: 800 });
  assert.deepEqual(problems, [], "no console errors");
});

test("pages through every operation, sorts by a column, and draws the chart with axes and a legend", async () => {
  await page.goto(`${base}/ui?pageSize=2`); // still signed in: the key is in session storage
  await page.waitForSelector("[data-testid=live]:has-text('live')", WAIT);
  const total = (await (await fetch(`${base}/v1/operations?scope=${SCOPE}`, {
    headers: { Authorization: `Bearer ${producerKey}` },
  })).json()).value.length;
  assert.equal(await page.locator("#operations tbody tr").count(), 2, "one page of two");
  while (await page.isVisible("[data-testid=more]")) {
    const before = await page.locator("#operations tbody tr").count();
    await page.click("[data-testid=more]");
    await page.waitForFunction((n) => document.querySelectorAll("#operations tbody tr").length > n, before, WAIT);
  }
  assert.equal(await page.locator("#operations tbody tr").count(), total, "every operation, page by page");
  assert.match(await page.locator("[data-testid=loaded]").textContent(), /\(all\)/);

  await page.click("th[data-sort=kind]");
  const kinds = () => page.$$eval("#operations tbody tr td:nth-child(3)", (cells) => cells.map((c) => c.textContent));
  const ascending = await kinds();
  assert.deepEqual(ascending, [...ascending].sort(), "sorted by kind");
  assert.equal(await page.getAttribute("th[data-sort=kind]", "aria-sort"), "ascending");
  await page.click("th[data-sort=kind]");
  assert.deepEqual(await kinds(), [...ascending].sort().reverse(), "and the other way");

  const labels = await page.$$eval("#chart text", (texts) => texts.map((t) => t.textContent));
  assert.ok(labels.includes("0") && labels.includes("now") && labels.includes("-60m"), `axes: ${labels}`);
  assert.equal(await page.locator("[data-testid=legend] .state").count(), 6, "a legend entry per state");
  assert.ok((await page.locator("#chart rect").count()) >= 3);
  assert.deepEqual(problems, [], "no console errors");
});

test("a key in the address fragment signs in and leaves the address", async () => {
  await page.click("#sign-out");
  await page.goto(`${base}/ui#key=${producerKey}`);
  await page.waitForSelector("[data-testid=who]:has-text('produce')", WAIT);
  assert.ok(!page.url().includes(producerKey), page.url());
  assert.deepEqual(problems, [], "no console errors");
});

/** Saves a screenshot of the page as an artifact, and as docs/`name` when LONGRUN_DOCS_SCREENSHOTS is set. */
async function keep(name) {
  const path = join(dirname(screenshot), name);
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  if (process.env.LONGRUN_DOCS_SCREENSHOTS) copyFileSync(path, join(repo, "docs", name));
}

/** Nothing leaves the page sideways at 1024 or 1280 px. */
async function fits(view) {
  for (const width of [1024, 1280]) {
    await page.setViewportSize({ width, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the ${view} view scrolls sideways at ${width} px by ${overflow} px`);
  }
  await page.setViewportSize({ width: 1400, height: 800 });
}

test("the workers, metrics and webhooks views, and an operation's lease, trace and deliveries", async () => {
  const received = [];
  const receiver = createServer((request, response) => {
    request.resume();
    received.push(request.headers);
    response.writeHead(204).end();
  });
  await new Promise((ready) => receiver.listen(0, "127.0.0.1", ready));
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  try {
    const admin = (method, path, body, headers = {}) =>
      fetch(base + path, {
        method,
        headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json", ...headers },
        body: body && JSON.stringify(body),
      });
    const hook = await (await admin("POST", "/v1/webhooks", { scope: SCOPE, url: hookUrl, events: "terminal" })).json();
    const traced = await (await admin("POST", "/v1/operations", { scope: SCOPE, kind: "render" }, {
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    })).json();
    const claimed = await admin("POST", "/v1/leases", { kinds: ["render"], owner: "worker-7", ttl: "60s" });
    assert.equal(claimed.status, 201);
    const lease = await claimed.json();

    await page.click("#sign-out");
    await page.fill("#key", adminKey);
    await page.click("#sign-in button[type=submit]");
    await page.waitForSelector("[data-testid=who]:has-text('admin')", WAIT);

    // Workers: the held lease, its worker and attempt.
    await page.click("#views button[data-view=workers]");
    await page.waitForSelector(`#leases ${row(traced.id)}:has-text('worker-7')`, WAIT);
    const cells = await page.$$eval(`#leases ${row(traced.id)} td`, (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(cells.slice(0, 4), [traced.id, "render", "worker-7", "1"]);
    assert.match(await page.locator("[data-testid=workers-summary]").textContent(), /1 lease\(s\) held by 1 worker\(s\): worker-7 \(1\)/);
    await fits("workers");
    await keep("dashboard-workers.png");

    // The worker finishes: the webhook is told, and the views follow.
    const done = await admin("POST", `/v1/leases/${lease.leaseId}:complete`, { state: "Succeeded" });
    assert.equal(done.status, 200);
    await page.waitForSelector("#leases td.empty", WAIT);

    // Metrics per kind, with a chart that has axes and a legend.
    await page.click("#views button[data-view=metrics]");
    await page.waitForSelector("#kinds tr:has(td:text-is('render'))", WAIT);
    const render = await page.$$eval("#kinds tr", (rows) =>
      rows.map((r) => [...r.cells].map((c) => c.textContent)).find((cells) => cells[0] === "render"));
    assert.deepEqual(render.slice(0, 7), ["render", "1", "1", "1", "0", "0", "0%"], `created, finished, succeeded, failed, canceled, failure rate: ${render}`);
    const created = await page.$$eval("#kinds tbody tr", (rows) => rows.reduce((n, r) => n + Number(r.cells[1].textContent), 0));
    assert.ok(created >= 6, `every kind counted: ${created}`);
    const labels = await page.$$eval("#throughput text", (texts) => texts.map((t) => t.textContent));
    assert.ok(labels.includes("0") && labels.includes("now"), `axes: ${labels}`);
    assert.equal(await page.locator("[data-testid=throughput-legend] .state").count(), 4);
    assert.ok((await page.locator("#throughput rect").count()) >= 2, "finished operations drawn by outcome");
    await fits("metrics");
    await keep("dashboard-metrics.png");

    // Webhooks: the hook and its delivery.
    await page.click("#views button[data-view=webhooks]");
    await page.waitForSelector(`#hooks td:text-is('${hook.id}')`, WAIT);
    await page.waitForSelector(`#deliveries ${row(traced.id)}:has-text('delivered')`, WAIT);
    assert.equal(received.length >= 1, true, "the receiver got the delivery");
    await fits("webhooks");
    await keep("dashboard-webhooks.png");

    // From a delivery to the operation: its lease history, trace and deliveries.
    await page.click(`#deliveries ${row(traced.id)}`);
    await page.waitForSelector("#view-operations:not([hidden])", WAIT);
    await page.waitForSelector("[data-testid=detail-facts]:has-text('attempts 1')", WAIT);
    assert.match(await page.locator("[data-testid=detail-facts]").textContent(), /trace 4bf92f3577b34da6a3ce929d0e0e4736/);
    await page.waitForSelector("[data-testid=detail-deliveries] li:has-text('delivered')", WAIT);
    await keep("dashboard-detail.png");
    assert.deepEqual(problems, [], "no console errors");
  } finally {
    receiver.close();
  }
});
