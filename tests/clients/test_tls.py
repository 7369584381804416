"""One Azure SDK flow over longrun's own HTTPS (`serve --tls`, the data dir's
development certificate), with no proxy and without `enforce_https=False`:
azure-core's bearer-token policy sends the token because the URL is https,
and the transport trusts longrun's development CA (`connection_verify`, the
Python counterpart of NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE).
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.developer.devcenter import DevCenterClient

from conftest import create_key, longrun_bin, start, stop
from lrhelpers import HTTP_TIMEOUT, LRO_TIMEOUT, Recorder, StaticKeyCredential

PROJECT = "tlsProject"


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    binary = longrun_bin()
    work = tmp_path_factory.mktemp("longrun-tls")
    data_dir = work / "data"
    with open(work / "server.log", "w") as log:
        proc, base_url, _ = start(binary, data_dir, log, ["--tls", "--demo", "--retry-after", "1"])
        try:
            key = create_key(binary, data_dir, f"projects/{PROJECT}", "produce")
            yield base_url, data_dir / "tls" / "dev-ca.pem", key
        finally:
            stop(proc)


def client(base_url, key, recorder, **transport):
    return DevCenterClient(
        base_url,
        StaticKeyCredential(key),
        api_version="2025-02-01",
        per_retry_policies=[recorder],
        connection_timeout=HTTP_TIMEOUT,
        read_timeout=HTTP_TIMEOUT,
        retry_total=0,
        **transport,
    )


def test_a_dev_box_delete_flow_runs_over_longruns_own_https(https_server):
    base_url, ca, key = https_server
    assert base_url.startswith("https://127.0.0.1:")
    recorder = Recorder()
    with client(base_url, key, recorder, connection_verify=str(ca)) as devcenter:
        poller = devcenter.begin_delete_dev_box(PROJECT, "me", f"box-{uuid.uuid4().hex[:8]}")
        result = poller.result(timeout=LRO_TIMEOUT)
    assert result["status"] == "Succeeded"
    polls = recorder.matching("GET", r"/operationstatuses/")
    assert polls, "the SDK polled over https"
    assert all(p.request_headers["Authorization"] == f"Bearer {key}" for p in polls)


def test_a_client_that_does_not_trust_the_development_ca_refuses_the_server(https_server):
    base_url, _, key = https_server
    with client(base_url, key, Recorder()) as devcenter:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            devcenter.begin_delete_dev_box(PROJECT, "me", "box-untrusted")
