"""Session fixture: one `longrun serve --demo` on 127.0.0.1:0 for the suite.

The binary comes from $LONGRUN_BIN (default target/debug/longrun; a relative
path is taken from the repository root). Keys are made with the binary's own
`key create`, the way an operator would; `--dev` makes the server trust the
tokens of the binary's `token mint` too. The server is stopped with SIGTERM
at the end; its stderr stays in the pytest temp dir (server.log).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from lrhelpers import Native

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30  # seconds for the server to print its listening line
CLI_TIMEOUT = 30  # seconds for one `longrun key create`
RETRY_AFTER = 1  # what the server tells pollers; tests count polls against it

LISTENING_RE = re.compile(r"longrun listening on (https?://\S+)")
GRPC_LISTENING_RE = re.compile(r"longrun gRPC listening on (\S+)")


@dataclass
class Longrun:
    """The running server and what the tests need to reach it."""

    base_url: str
    grpc_target: str  # host:port of the gRPC listener
    data_dir: Path
    log_path: Path
    retry_after: int
    admin_key: str  # scope *, role admin
    account: str  # Face account name
    face_key: str  # accounts/{account}, role produce
    project: str  # Dev Center project
    project_key: str  # projects/{project}, role produce
    project_token: str  # a `token mint` JWT: projects/{project}, produce, Dev Center audience
    tenant: str  # Sphere tenant uuid
    tenant_key: str  # tenants/{tenant}, role produce

    @property
    def native(self) -> Native:
        return Native(self.base_url, self.admin_key)

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def longrun_bin() -> Path:
    raw = os.environ.get("LONGRUN_BIN", "target/debug/longrun")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.exists():
        pytest.exit(
            f"longrun binary not found at {path}: build it (cargo build) or set LONGRUN_BIN",
            returncode=3,
        )
    return path


def create_key(binary: Path, data_dir: Path, scope: str, role: str) -> str:
    done = subprocess.run(
        [str(binary), "key", "create", "--scope", scope, "--role", role,
         "--name", f"clients-{role}", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"key create {scope} {role} failed: {done.stderr}"
    secret = done.stdout.strip()
    assert secret and "\n" not in secret, f"key create printed more than a secret: {done.stdout!r}"
    return secret


def mint_token(binary: Path, data_dir: Path, scope: str, role: str, audience: str) -> str:
    """A development JWT from `longrun token mint`, trusted by `serve --dev`."""
    done = subprocess.run(
        [str(binary), "token", "mint", "--scope", scope, "--role", role,
         "--audience", audience, "--expires-in", "2h", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"token mint {scope} {role} failed: {done.stderr}"
    token = done.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, f"token mint printed more than a token: {done.stdout!r}"
    return token


def _pump(stream, lines: "queue.Queue[str | None]") -> None:
    """Reads the server's stdout to the end so the pipe never fills."""
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def start(binary: Path, data_dir: Path, log, args: list) -> "tuple[subprocess.Popen, str, str | None]":
    """`longrun serve ARGS` on 127.0.0.1:0; the process, its base URL and,
    with `--grpc-listen`, the gRPC listener's HOST:PORT (else None)."""
    proc = subprocess.Popen(
        [str(binary), "serve", *args, "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stop(proc)
            raise RuntimeError(f"longrun did not print its listening line within {START_TIMEOUT} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            proc.wait(timeout=5)
            log.flush()
            raise RuntimeError(
                f"longrun exited with code {proc.returncode} before listening:\n"
                + Path(log.name).read_text(errors="replace")[-4000:]
            )
        match = LISTENING_RE.search(line)
        if match:
            base_url = match.group(1).rstrip("/")
            if "--grpc-listen" not in args:
                return proc, base_url, None
        grpc = GRPC_LISTENING_RE.search(line)
        if grpc:
            return proc, base_url, grpc.group(1)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it does not stop within 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def longrun(tmp_path_factory) -> Longrun:
    binary = longrun_bin()
    work = tmp_path_factory.mktemp("longrun")
    data_dir = work / "data"
    log_path = work / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finalizer below
    proc, base_url, grpc_target = start(
        binary, data_dir, log,
        ["--demo", "--dev", "--retry-after", str(RETRY_AFTER), "--grpc-listen", "127.0.0.1:0"],
    )
    try:
        account = "contoso"
        project = "contosoProject"
        tenant = str(uuid.UUID("143adbc9-1bf0-4be2-84a2-084a331d81cb"))
        server = Longrun(
            base_url=base_url,
            grpc_target=grpc_target,
            data_dir=data_dir,
            log_path=log_path,
            retry_after=RETRY_AFTER,
            admin_key=create_key(binary, data_dir, "*", "admin"),
            account=account,
            face_key=create_key(binary, data_dir, f"accounts/{account}", "produce"),
            project=project,
            project_key=create_key(binary, data_dir, f"projects/{project}", "produce"),
            project_token=mint_token(
                binary, data_dir, f"projects/{project}", "produce", "https://devcenter.azure.com"
            ),
            tenant=tenant,
            tenant_key=create_key(binary, data_dir, f"tenants/{tenant}", "produce"),
        )
        yield server
    finally:
        stop(proc)
        log.close()


@pytest.fixture
def native(longrun: Longrun) -> Native:
    """The native API with the admin key: create, patch, cancel."""
    return longrun.native
