// Unchanged Azure SDK packages for JavaScript against longrun's own HTTPS:
// `longrun dev-cert`, `serve --tls --demo`, a Dev Center delete flow
// (devcenter-flow.mjs) and a Face snapshot take and apply (face-flow.mjs),
// each run by a Node process that trusts the development CA through
// NODE_EXTRA_CA_CERTS, as `dev-cert` tells users to. No proxy.
//
//   LONGRUN_BIN=target/debug/longrun node --test tests/clients-js/

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(here, "../..", process.env.LONGRUN_BIN ?? "target/debug/longrun");
const flow = join(here, "devcenter-flow.mjs");
const faceFlow = join(here, "face-flow.mjs");
const PROJECT = "jsProject";

/** `longrun serve ARGS` on 127.0.0.1:0; resolves with the process and its URL. */
function serve(args) {
  const server = spawn(bin, ["serve", ...args, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "ignore"] });
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error("longrun did not listen within 30 s")), 30_000);
    server.on("exit", (code) => fail(new Error(`longrun exited with ${code} before listening`)));
    createInterface({ input: server.stdout }).on("line", (line) => {
      const listening = line.match(/^longrun listening on (\S+)/);
      if (listening) {
        clearTimeout(timer);
        done({ server, url: listening[1] });
      }
    });
  });
}

test("a Dev Center delete runs through @azure/core-lro over longrun's own HTTPS, trusted by NODE_EXTRA_CA_CERTS", async () => {
  const dir = mkdtempSync(join(tmpdir(), "longrun-js-"));
  execFileSync(bin, ["dev-cert", "--data-dir", dir], { stdio: "pipe" });
  const { server, url } = await serve(["--tls", "--demo", "--retry-after", "1", "--data-dir", dir]);
  try {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const key = execFileSync(bin, ["key", "create", "--scope", `projects/${PROJECT}`, "--role", "produce", "--data-dir", dir], {
      stdio: ["ignore", "pipe", "pipe"],
    })
      .toString()
      .trim();
    const run = promisify(execFile);
    const ca = join(dir, "tls", "dev-ca.pem");
    const { stdout } = await run(process.execPath, [flow, url, key, PROJECT], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
      timeout: 60_000,
    });
    const seen = JSON.parse(stdout);
    assert.equal(seen.status, "succeeded");
    assert.ok(seen.polls >= 2, `the demo script takes ~3 s at Retry-After 1: ${seen.polls} poll(s)`);

    const untrusting = { ...process.env };
    delete untrusting.NODE_EXTRA_CA_CERTS;
    await assert.rejects(run(process.execPath, [flow, url, key, PROJECT], { env: untrusting, timeout: 60_000 }), (error) =>
      /certificate|UNABLE_TO_GET_ISSUER_CERT/i.test(error.stderr),
    );
  } finally {
    server.kill("SIGTERM");
  }
});

test("a Face snapshot take and apply run through @azure/core-lro over HTTPS and end with the objects they made", async () => {
  const dir = mkdtempSync(join(tmpdir(), "longrun-js-"));
  execFileSync(bin, ["dev-cert", "--data-dir", dir], { stdio: "pipe" });
  const { server, url } = await serve(["--tls", "--demo", "--retry-after", "1", "--data-dir", dir]);
  try {
    const key = execFileSync(bin, ["key", "create", "--scope", "accounts/jsaccount", "--role", "produce", "--data-dir", dir], {
      stdio: ["ignore", "pipe", "pipe"],
    })
      .toString()
      .trim();
    const { stdout } = await promisify(execFile)(process.execPath, [faceFlow, url, key], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "tls", "dev-ca.pem") },
      timeout: 60_000,
    });
    const { take, apply } = JSON.parse(stdout);
    assert.equal(take.status, "succeeded");
    // core-lro's result is the GET of the status' resourceLocation: the snapshot itself.
    assert.equal(take.result.status, "200");
    assert.equal(take.result.body.type, "PersonGroup");
    assert.equal(take.result.body.account, "accounts/jsaccount");
    assert.equal(take.result.body.userData, "taken by face-flow.mjs");
    assert.match(take.result.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(apply.status, "succeeded");
    assert.equal(apply.result.status, "200");
    assert.match(apply.result.body.personGroupId, /^group-\d+-copy$/);
    assert.equal(apply.result.body.name, apply.result.body.personGroupId);
  } finally {
    server.kill("SIGTERM");
  }
});
