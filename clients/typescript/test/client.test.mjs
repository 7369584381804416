// The Client against a real longrun: create, get, update, wait, result,
// list, events, cancel, repeatability, typed errors and retries.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { Client, Conflict, NotFound, TooManyRequests, Unauthorized, etagOf } from "../dist/index.js";
import { serve, uniqueScope } from "./helpers.mjs";

let server;
let client;
before(async () => {
  server = await serve();
  client = new Client(server.url, { key: server.key() });
});
after(async () => {
  await client.close();
  await server.stop();
});

test("an operation is created, read, moved and awaited", async () => {
  const scope = uniqueScope();
  const op = await client.create(scope, "resize", { properties: { w: 64 } });
  assert.deepEqual([op.scope, op.kind, op.state, op.properties], [scope, "resize", "NotStarted", { w: 64 }]);
  assert.deepEqual(await client.get(op.id), op);
  const running = await client.update(op.id, { state: "Running", percentComplete: 40 });
  assert.deepEqual([running.state, running.percentComplete], ["Running", 40]);
  setTimeout(() => client.update(op.id, { state: "Succeeded", resourceLocation: "/images/42" }), 300);
  const done = await client.result(op.id, 30);
  assert.deepEqual([done.state, done.resourceLocation], ["Succeeded", "/images/42"]);
  assert.equal((await client.wait(op.id, 1, etagOf(running))).version, done.version, "a change since the etag: at once");
});

test("result gives up at its timeout", async () => {
  const op = await client.create(uniqueScope(), "resize");
  await assert.rejects(client.result(op.id, 1.5), /still NotStarted/);
});

test("list follows every page with filters", async () => {
  const scope = uniqueScope();
  const made = [];
  for (let n = 0; n < 5; n++) made.push((await client.create(scope, "resize")).id);
  await client.create(scope, "other");
  await client.update(made[0], { state: "Running" });
  const listed = [];
  for await (const op of client.list(scope, { kind: "resize", pageSize: 2 })) listed.push(op.id);
  assert.deepEqual(listed.sort(), [...made].sort());
  const running = [];
  for await (const op of client.list(scope, { state: "Running" })) running.push(op.id);
  assert.deepEqual(running, [made[0]]);
});

test("cancel ends an operation and a finished one refuses changes", async () => {
  const op = await client.create(uniqueScope(), "resize");
  assert.equal((await client.cancel(op.id)).state, "Canceled");
  const refused = await client.update(op.id, { state: "Running" }).catch((e) => e);
  assert.ok(refused instanceof Conflict, String(refused));
  assert.equal(refused.status, 409);
  assert.ok(refused.requestId);
});

test("a repeated create returns the first operation", async () => {
  const scope = uniqueScope();
  const requestId = crypto.randomUUID();
  const first = await client.create(scope, "resize", { requestId });
  const again = await client.create(scope, "resize", { requestId });
  assert.equal(again.id, first.id);
});

test("refusals are typed with the server's code", async () => {
  const missing = await client.get(crypto.randomUUID()).catch((e) => e);
  assert.ok(missing instanceof NotFound && missing.code && missing.requestId, String(missing));
  const stranger = new Client(server.url, { key: "lr_not_a_key" });
  assert.ok((await stranger.get(crypto.randomUUID()).catch((e) => e)) instanceof Unauthorized);
});

test("events stream changes and resume after the last one seen", async () => {
  const scope = uniqueScope();
  const ids = [];
  for (let n = 0; n < 3; n++) ids.push((await client.create(scope, "resize")).id);
  const seen = [];
  for await (const event of client.events({ scope, lastEventId: "0" })) {
    seen.push(event);
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen.map((e) => e.operation.id), ids.slice(0, 2));
  for await (const event of client.events({ scope, lastEventId: seen[1].id })) {
    assert.equal(event.operation.id, ids[2]);
    break;
  }
});

test("events reconnect by themselves when the server restarts", async () => {
  const first = await serve();
  const key = first.key();
  const port = new URL(first.url).port;
  const scope = uniqueScope();
  const mine = new Client(first.url, { key });
  const before = (await mine.create(scope, "resize")).id;
  const stream = mine.events({ scope, lastEventId: "0" });
  assert.equal((await stream.next()).value.operation.id, before);
  await first.stop();
  const second = await serve([], { dataDir: first.dataDir, listen: `127.0.0.1:${port}` });
  try {
    const afterId = (await mine.create(scope, "resize")).id;
    assert.equal((await stream.next()).value.operation.id, afterId, "the stream came back on its own");
  } finally {
    await stream.return();
    await mine.close();
    await second.stop();
  }
});

test("429 is retried by Retry-After until it passes", async () => {
  const limited = await serve(["--rate-limit", "2"]);
  try {
    const key = limited.key();
    const patient = new Client(limited.url, { key, maxRetries: 10 });
    const op = await patient.create(uniqueScope(), "resize");
    for (let n = 0; n < 12; n++) assert.equal((await patient.get(op.id)).id, op.id);
    const impatient = new Client(limited.url, { key, maxRetries: 0 });
    let refused;
    for (let n = 0; n < 12 && !refused; n++) refused = await impatient.get(op.id).then(() => undefined, (e) => e);
    assert.ok(refused instanceof TooManyRequests, String(refused));
  } finally {
    await limited.stop();
  }
});

test("503 is retried by Retry-After", async () => {
  // longrun answers 503 only when its store is down: a stand-in server
  // plays that part here (the Rust outage tests cover the real one).
  let answers = 0;
  const flaky = createServer((request, response) => {
    answers++;
    if (answers <= 2) return response.writeHead(503, { "retry-after": "0" }).end();
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ id: "x", scope: "projects/p", kind: "k", state: "Running", version: 2 }));
  });
  await new Promise((resolve) => flaky.listen(0, "127.0.0.1", resolve));
  try {
    const op = await new Client(`http://127.0.0.1:${flaky.address().port}`, { key: "k" }).get("x");
    assert.deepEqual([op.state, answers], ["Running", 3]);
  } finally {
    flaky.close();
  }
});

test("https works with the CA bundle it is given", async () => {
  const secure = await serve(["--tls"]);
  try {
    assert.match(secure.url, /^https:\/\//);
    const key = secure.key();
    const trusting = new Client(secure.url, { key, ca: `${secure.dataDir}/tls/dev-ca.pem` });
    const op = await trusting.create(uniqueScope(), "resize");
    assert.equal((await trusting.get(op.id)).id, op.id);
    await trusting.close();
    const refused = await new Client(secure.url, { key }).get(op.id).catch((e) => e);
    assert.match(String(refused), /not trusted/, "the system's CAs do not know it: no retries, at once");
  } finally {
    await secure.stop();
  }
});
