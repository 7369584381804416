// A real `longrun serve` (built from this repository) on a free port, and
// keys made with `longrun key create`, for the SDK's tests.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const binary = process.env.LONGRUN_BIN ? resolve(process.env.LONGRUN_BIN) : join(repo, "target/debug/longrun");

/** Starts `longrun serve ARGS`; resolves once it prints where it listens. */
export async function serve(args = [], { dataDir, listen = "127.0.0.1:0" } = {}) {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: build it with cargo build (or set LONGRUN_BIN)`);
  dataDir ??= mkdtempSync(join(tmpdir(), "longrun-ts-"));
  const log = openSync(join(dataDir, "..", `${dataDir.split("/").pop()}.log`), "a");
  const child = spawn(binary, ["serve", "--listen", listen, "--data-dir", dataDir, ...args], {
    stdio: ["ignore", "pipe", log],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("longrun did not start within 60 s")), 60_000);
    lines.on("line", (line) => {
      const found = /longrun listening on (\S+)/.exec(line);
      if (found) {
        clearTimeout(timer);
        resolve(found[1].replace(/\/$/, ""));
      }
    });
    child.on("exit", (code) => reject(new Error(`longrun exited with ${code} before listening`)));
  });
  return {
    url,
    dataDir,
    key(scope = "*", role = "admin") {
      const out = execFileSync(binary, ["key", "create", "--scope", scope, "--role", role, "--data-dir", dataDir], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
      return out.trim().split("\n").pop();
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** `test/worker-process.mjs` against `server`, in its own process; its stdout as lines. */
export function workerProcess(server, key, ...args) {
  const script = join(dirname(fileURLToPath(import.meta.url)), "worker-process.mjs");
  const child = spawn(process.execPath, [script, server.url, key, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const queue = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  });
  return {
    child,
    nextLine: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve))),
    exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
  };
}

/** Polls `condition` until it holds or `seconds` pass. */
export async function until(condition, seconds = 30, what = "the condition") {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const value = await condition();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not hold within ${seconds} s`);
}

export const uniqueScope = () => `projects/ts${Math.random().toString(36).slice(2, 14)}`;
