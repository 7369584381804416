"""A worker in its own process, for the tests that kill or stop one:

    worker_process.py URL KEY NAME KIND SECONDS [--ttl N]

Handles KIND by printing "started OPID" and working SECONDS (in slices, so
it notices a cancel), then succeeds with {"worker": NAME}.
"""

import sys
import time

from longrun import Client, Worker

url, key, name, kind, seconds = sys.argv[1:6]
ttl = float(sys.argv[sys.argv.index("--ttl") + 1]) if "--ttl" in sys.argv else 30
worker = Worker(Client(url, key=key), concurrency=2, lease_ttl=ttl, claim_wait=2, grace=30)


@worker.handler(kind)
def work(job):
    print("started", job.operation.id, flush=True)
    until = time.monotonic() + float(seconds)
    while time.monotonic() < until and not job.cancelled:
        time.sleep(0.05)
    return {"properties": {"worker": name}}


print("ready", flush=True)
worker.run()
print("stopped", flush=True)
