// A Face snapshot take and apply, the way the generated @azure-rest clients
// run them: @azure-rest/core-client with the Face key header and
// @azure/core-lro (poll.mjs), which follows Operation-Location to a
// terminal state and then fetches the status' resourceLocation (the
// snapshot, then the object it was applied to) as the flow's result.
//
//   node face-flow.mjs ENDPOINT KEY
//
// Prints {"take": {status, polls, result}, "apply": {…}} as JSON on stdout.

import { getClient } from "@azure-rest/core-client";
import { pollToEnd } from "./poll.mjs";

const [endpoint, key] = process.argv.slice(2);
const client = getClient(`${endpoint}/face/v1.0`, { key }, {
  credentials: { apiKeyHeaderName: "Ocp-Apim-Subscription-Key" },
  retryOptions: { maxRetries: 0 },
});

/** Starts a Face call (202, Operation-Location) and polls it to its result. */
async function run(path, body) {
  const initial = await client.pathUnchecked(path).post({ body });
  if (initial.status !== "202") {
    throw new Error(`${path} answered ${initial.status}: ${JSON.stringify(initial.body)}`);
  }
  return pollToEnd(client, initial);
}

const group = `group-${Date.now()}`;
const take = await run("/snapshots", {
  type: "PersonGroup",
  objectId: group,
  applyScope: ["00000000-0000-4000-8000-000000000001"],
  userData: "taken by face-flow.mjs",
});
const apply = await run(`/snapshots/${take.result.body.id}/apply`, { objectId: `${group}-copy`, mode: "CreateNew" });
console.log(JSON.stringify({ take, apply }));
