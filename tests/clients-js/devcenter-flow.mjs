// A Dev Center dev box delete, the way the generated @azure-rest clients run
// it: @azure-rest/core-client (whose pipeline's bearerTokenAuthenticationPolicy
// refuses to send a token to anything but https) and @azure/core-lro
// (poll.mjs), following Operation-Location to a terminal state.
//
//   node devcenter-flow.mjs ENDPOINT KEY PROJECT
//
// Prints {"status", "polls", "result"} as JSON on stdout.

import { getClient } from "@azure-rest/core-client";
import { pollToEnd } from "./poll.mjs";

const [endpoint, key, project] = process.argv.slice(2);
// A longrun key is a bearer token: a TokenCredential that returns it.
const credential = { getToken: async () => ({ token: key, expiresOnTimestamp: Date.now() + 3_600_000 }) };
const client = getClient(endpoint, credential, {
  credentials: { scopes: ["https://devcenter.azure.com/.default"] },
  retryOptions: { maxRetries: 0 },
});
const box = `box-${Date.now()}`;
const initial = await client
  .path("/projects/{projectName}/users/{userId}/devboxes/{devBoxName}", project, "me", box)
  .delete({ queryParameters: { "api-version": "2025-02-01" } });
if (initial.status !== "202") {
  throw new Error(`the delete answered ${initial.status}: ${JSON.stringify(initial.body)}`);
}

console.log(JSON.stringify(await pollToEnd(client, initial)));
