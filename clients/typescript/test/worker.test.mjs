// The Worker against a real longrun: a queue drained with bounded
// concurrency, failures, a killed worker's job re-run exactly once, a
// cancel seen mid-job, and a drain on SIGTERM.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, Failure, Worker } from "../dist/index.js";
import { serve, uniqueScope, until, workerProcess } from "./helpers.mjs";

let server;
let key;
let client;
before(async () => {
  server = await serve();
  key = server.key();
  client = new Client(server.url, { key });
});
after(async () => {
  await client.close();
  await server.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("a worker processes a hundred operations four at a time", async () => {
  const scope = uniqueScope();
  const kind = `drain${Date.now()}`;
  const ids = new Set();
  for (let n = 0; n < 100; n++) ids.add((await client.create(scope, kind, { properties: { n } })).id);
  let running = 0;
  let most = 0;
  const worker = new Worker(client, { concurrency: 4, scope, claimWait: 1, handleSignals: false });
  worker.handle(kind, async (job) => {
    most = Math.max(most, ++running);
    await sleep(20);
    running--;
    return { resourceLocation: `/done/${job.operation.properties.n}` };
  });
  const run = worker.run();
  await until(() => worker.completed === 100, 60, "100 completions");
  worker.stop();
  await run;
  const ops = [];
  for await (const op of client.list(scope)) ops.push(op);
  assert.deepEqual(new Set(ops.map((op) => op.id)), ids);
  assert.ok(ops.every((op) => op.state === "Succeeded" && op.resourceLocation === `/done/${op.properties.n}`));
  assert.ok(ops.every((op) => op.attempts === 1), "each claimed once");
  assert.ok(most > 1 && most <= 4, `at most four at once, and more than one: ${most}`);
});

test("a failure and an exception fail their operations", async () => {
  const scope = uniqueScope();
  const refused = await client.create(scope, "failing", { properties: { how: "failure" } });
  const crashed = await client.create(scope, "failing", { properties: { how: "crash" } });
  const worker = new Worker(client, { scope, claimWait: 1, handleSignals: false });
  worker.handle("failing", (job) => {
    if (job.operation.properties.how === "failure") throw new Failure("DiskFull", "no space left");
    throw new Error("boom");
  });
  const run = worker.run();
  const [first, second] = [await client.result(refused.id, 30), await client.result(crashed.id, 30)];
  worker.stop();
  await run;
  assert.deepEqual([first.state, first.error.code, first.error.message], ["Failed", "DiskFull", "no space left"]);
  assert.deepEqual([second.state, second.error.code, second.error.message], ["Failed", "HandlerError", "boom"]);
  assert.equal(second.error.details, undefined, "no stack unless asked");
});

test("progress rides on heartbeats and a cancel reaches the handler", async () => {
  const scope = uniqueScope();
  const ttl = 3;
  const op = await client.create(scope, "long");
  let started = false;
  let sawCancel;
  const worker = new Worker(client, { scope, leaseTtl: ttl, claimWait: 1, handleSignals: false });
  worker.handle("long", async (job) => {
    job.progress(25, { stage: "one" });
    started = true;
    await new Promise((resolve) => job.signal.addEventListener("abort", resolve));
    sawCancel = Date.now();
    return { properties: { ignored: true } };
  });
  const run = worker.run();
  await until(() => started, 30, "the job starting");
  await until(async () => (await client.get(op.id)).percentComplete === 25, 10, "progress from a heartbeat");
  assert.deepEqual((await client.get(op.id)).properties, { stage: "one" });
  const canceledAt = Date.now();
  await client.cancel(op.id);
  await until(() => sawCancel, ttl / 3 + 1, "the handler seeing the cancel within ttl/3 + 1 s");
  worker.stop();
  await run;
  const final = await client.get(op.id);
  assert.equal(final.state, "Canceled");
  assert.ok(!("ignored" in (final.properties ?? {})));
  assert.ok(sawCancel - canceledAt <= (ttl / 3 + 1) * 1000);
});

test("a killed worker's job is re-run and completed once by another", async () => {
  const kind = `kill${Date.now()}`;
  const op = await client.create(uniqueScope(), kind);
  const doomed = workerProcess(server, key, "doomed", kind, "60", "3");
  assert.equal(await doomed.nextLine(), "ready");
  assert.equal(await doomed.nextLine(), `started ${op.id}`);
  doomed.child.kill("SIGKILL");
  await doomed.exited;
  const survivor = workerProcess(server, key, "survivor", kind, "0.2", "3");
  try {
    const done = await client.result(op.id, 30);
    assert.deepEqual([done.state, done.properties, done.attempts], ["Succeeded", { worker: "survivor" }, 2]);
  } finally {
    survivor.child.kill("SIGTERM");
    await survivor.exited;
  }
});

test("SIGTERM lets running jobs finish and starts nothing new", async () => {
  const kind = `term${Date.now()}`;
  const scope = uniqueScope();
  const first = await client.create(scope, kind);
  const worker = workerProcess(server, key, "draining", kind, "1.5");
  assert.equal(await worker.nextLine(), "ready");
  assert.equal(await worker.nextLine(), `started ${first.id}`);
  worker.child.kill("SIGTERM");
  const later = await client.create(scope, kind);
  assert.equal(await worker.exited, 0);
  assert.equal(await worker.nextLine(), "stopped");
  const finished = await client.get(first.id);
  assert.deepEqual([finished.state, finished.properties], ["Succeeded", { worker: "draining" }]);
  const untouched = await client.get(later.id);
  // Never started: unclaimed, or (when the claim waiting on the server
  // took it as the worker stopped) handed back at once.
  assert.deepEqual([untouched.state, untouched.properties, (untouched.attempts ?? 0) <= 1], ["NotStarted", undefined, true]);
});

test("a refused progress is dropped and the lease kept", async () => {
  const scope = uniqueScope();
  const ttl = 3;
  const op = await client.create(scope, "regress");
  const worker = new Worker(client, { scope, leaseTtl: ttl, claimWait: 1, handleSignals: false });
  worker.handle("regress", async (job) => {
    job.progress(50);
    await until(async () => (await client.get(op.id)).percentComplete === 50, 10, "the first progress");
    job.progress(40); // lower: the server refuses it
    await sleep(2 * ttl * 1000); // past the lease, had the heartbeats stopped extending it
    return { properties: { kept: true } };
  });
  const run = worker.run();
  const done = await client.result(op.id, 30);
  worker.stop();
  await run;
  assert.deepEqual([done.state, done.properties, done.attempts, done.percentComplete], ["Succeeded", { kept: true }, 1, 50]);
});

test("the handler gets the trace the operation was created in", async () => {
  const scope = uniqueScope();
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const created = await fetch(`${server.url}/v1/operations`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", traceparent },
    body: JSON.stringify({ scope, kind: "traced" }),
  });
  assert.equal(created.status, 201);
  const traced = (await created.json()).id;
  const untraced = (await client.create(scope, "traced")).id;
  const seen = new Map();
  // What the worker's own requests carry (white-box: the client's one request method).
  const sent = [];
  const send = client.json;
  client.json = function (method, url, options = {}) {
    sent.push([url, options.headers?.traceparent]);
    return send.call(this, method, url, options);
  };
  const worker = new Worker(client, { scope, claimWait: 1, handleSignals: false });
  worker.handle("traced", (job) => {
    seen.set(job.operation.id, job.traceparent);
    return {};
  });
  const run = worker.run();
  await until(() => worker.completed === 2, 30, "two completions");
  worker.stop();
  await run;
  client.json = send;
  assert.deepEqual(seen, new Map([[traced, traceparent], [untraced, undefined]]));
  const completions = new Map(
    sent.filter(([url]) => url.endsWith(":complete")).map(([url, header]) => [url.split("/").pop().split(".")[0], header]),
  );
  assert.deepEqual(completions, new Map([[traced, traceparent], [untraced, undefined]]), "each completion joins its trace");
});
