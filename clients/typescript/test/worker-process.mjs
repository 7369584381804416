// A worker in its own process, for the tests that kill or stop one:
//   worker-process.mjs URL KEY NAME KIND SECONDS [TTL]
// Handles KIND by printing "started OPID" and working SECONDS (noticing a
// cancel), then succeeds with {worker: NAME}.
import { Client, Worker } from "../dist/index.js";

const [url, key, name, kind, seconds, ttl = "30"] = process.argv.slice(2);
const worker = new Worker(new Client(url, { key }), { concurrency: 2, leaseTtl: Number(ttl), claimWait: 2 });
worker.handle(kind, async (job) => {
  console.log("started", job.operation.id);
  const until = Date.now() + Number(seconds) * 1000;
  while (Date.now() < until && !job.cancelled) await new Promise((r) => setTimeout(r, 50));
  return { properties: { worker: name } };
});
console.log("ready");
await worker.run();
console.log("stopped");
