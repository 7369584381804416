// How the generated @azure-rest clients' getLongRunningPoller drives
// @azure/core-lro's createHttpPoller: the initial response and every poll
// handed over as {flatResponse, rawResponse}, each GET sent through the
// client's own pipeline (its credential policy included).

import { createHttpPoller } from "@azure/core-lro";

/** Polls the operation `initial` started to its end: {status, polls, result: {status, body}}. */
export async function pollToEnd(client, initial) {
  const asLro = (response) => ({
    flatResponse: response,
    rawResponse: { ...response, statusCode: Number.parseInt(response.status), body: response.body },
  });
  let polls = 0;
  const poller = createHttpPoller(
    {
      sendInitialRequest: async () => asLro(initial),
      sendPollRequest: async (path) => {
        polls += 1;
        const response = await client.pathUnchecked(path).get();
        if (!["200", "202"].includes(response.status)) {
          throw new Error(`GET ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
        }
        return asLro(response);
      },
    },
    { intervalInMs: 1000 },
  );
  // The final response, as the generated clients return it.
  const final = await poller.pollUntilDone();
  return { status: poller.operationState.status, polls, result: { status: final.status, body: final.body } };
}
