"""Driver of bench/sdk-worker: starts longrun, fills a queue, runs one
worker process until the queue is drained, and reads the server's request
count before and after from /metrics."""

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from longrun import Client

binary, ops = sys.argv[1], int(sys.argv[2])
two_cores = os.cpu_count() and os.cpu_count() >= 2
pin = (lambda cpu: ["taskset", "-c", str(cpu)]) if two_cores else (lambda cpu: [])
work = tempfile.mkdtemp(prefix="longrun-sdk-bench.")
server = subprocess.Popen(
    [*pin(0), binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", work, "--rate-limit", "0", "--max-streams", "0"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
)
url = None
for line in server.stdout:
    found = re.search(r"listening on (\S+)", line)
    if found:
        url = found.group(1)
        break
key = subprocess.run([binary, "key", "create", "--scope", "*", "--role", "admin", "--data-dir", work],
                     capture_output=True, text=True, check=True).stdout.split()[-1]
client = Client(url, key=key)


def requests_served() -> float:
    text = client._transport.http.get("/metrics").text
    return sum(float(m.group(1)) for m in re.finditer(r"^http_requests_total\{.*\} (\S+)$", text, re.M))


scope = "projects/benchworker"
started = time.monotonic()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda n: client.create(scope, "noop"), range(ops)))
print(f"queued {ops:,} operations in {time.monotonic() - started:.1f} s")

worker_code = f"""
import threading, time
from longrun import Client, Worker
worker = Worker(Client({url!r}, key={key!r}), concurrency=64, lease_ttl=30, claim_wait=1)
worker.handler("noop")(lambda job: None)
drained = []
def stop_when_drained():
    while worker.completed < {ops}:
        time.sleep(0.01)
    drained.append(time.monotonic())
    worker.stop()
threading.Thread(target=stop_when_drained, daemon=True).start()
t0 = time.monotonic()
worker.run(install_signal_handlers=False)
print(drained[0] - t0)  # to the last completion: the stop's drain is not work
"""
def server_cpu() -> float:
    fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


before, server_before = requests_served(), server_cpu()
children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
drained = subprocess.run([*pin(1), sys.executable, "-c", worker_code], capture_output=True, text=True, check=True)
after = requests_served() - 1  # a scrape is counted once answered: the first one is in the second's count
seconds = float(drained.stdout.split()[-1])
server_cores = (server_cpu() - server_before) / seconds
usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker process (the server is not reaped yet)
worker_cpu = usage.ru_utime + usage.ru_stime - children_before.ru_utime - children_before.ru_stime
worker_cores = worker_cpu / seconds
left = sum(1 for _ in client.list(scope, state="NotStarted")) + sum(1 for _ in client.list(scope, state="Running"))
succeeded = sum(1 for _ in client.list(scope, state="Succeeded"))
server.terminate()
server.wait(30)
requests = after - before
print(f"drained {succeeded:,} of {ops:,} operations in {seconds:.2f} s: {succeeded / seconds:,.0f} operations/s")
print(f"server requests per operation: {requests / ops:.2f} ({requests:,.0f} requests; goal ≤ 3)")
print(f"CPU: worker process {worker_cores:.2f} cores, server {server_cores:.2f} cores")
print(f"left unfinished: {left}")
sys.exit(0 if succeeded == ops and left == 0 else 1)
