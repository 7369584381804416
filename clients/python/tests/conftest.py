"""A real ``longrun serve`` (built from this repository) on a free port,
keys made with ``longrun key create``, for the SDK's tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
LISTENING = re.compile(r"longrun listening on (\S+)")


def longrun_bin() -> Path:
    binary = Path(os.environ.get("LONGRUN_BIN", REPO / "target" / "debug" / "longrun"))
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `cargo build` (or set LONGRUN_BIN)")
    return binary


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen

    def key(self, scope: str = "*", role: str = "admin") -> str:
        done = subprocess.run(
            [str(longrun_bin()), "key", "create", "--scope", scope, "--role", role, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def serve(data_dir: Path, log_path: Path, *args: str, listen: str = "127.0.0.1:0") -> Server:
    """Starts ``longrun serve`` and returns once it prints where it listens."""
    log = open(log_path, "a")  # noqa: SIM115 - the server's stderr for its whole life
    process = subprocess.Popen(
        [str(longrun_bin()), "serve", "--listen", listen, "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError("longrun exited before listening:\n" + log_path.read_text()[-3000:])
        found = LISTENING.search(line)
        if found:
            return Server(found.group(1).rstrip("/"), data_dir, process)
    process.kill()
    raise RuntimeError("longrun did not start within 60 s")


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> "Server":
    work = tmp_path_factory.mktemp("longrun-sdk")
    running = serve(work / "data", work / "server.log")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin_key(server: Server) -> str:
    return server.key()


def worker_process(server: Server, key: str, *args: str) -> subprocess.Popen:
    """``tests/worker_process.py`` against ``server``, in its own process."""
    script = Path(__file__).with_name("worker_process.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    command: List[str] = [sys.executable, str(script), server.url, key, *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
