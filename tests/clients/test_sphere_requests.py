"""Azure Sphere (seed 000, SPEC §2.1/§2.5) with plain `requests`, the way
public samples talk to the Sphere public API (no published client library):
POST the image package, then poll the generic AsyncOperations - Get URL,
switching on the integer `State` until 2 (Complete) or 3 (Failed)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from lrhelpers import HTTP_TIMEOUT, LRO_TIMEOUT, assert_rfc3339_utc, op_id_from, retry_after_seconds

NOT_STARTED, IN_PROGRESS, COMPLETE, FAILED, COMPLETE_WITH_ERRORS = range(5)
IMAGE_UPLOAD = 7


@pytest.fixture
def sphere(longrun):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {longrun.tenant_key}"
    return session


def upload_image(longrun, sphere) -> dict:
    r = sphere.post(
        f"{longrun.base_url}/v2/tenants/{longrun.tenant}/images",
        data=b"\x4d\x5a" + bytes(range(256)) * 4,  # any bytes: longrun does not read the package
        headers={"Content-Type": "application/octet-stream"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def wait_for_operation(longrun, sphere, op_id: str, timeout: float = LRO_TIMEOUT):
    """Polls GET /v2/tenants/{t}/operations/{id} until State is 2 or 3 (or 4).
    Returns (final Operation, number of polls)."""
    url = f"{longrun.base_url}/v2/tenants/{longrun.tenant}/operations/{op_id}"
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        r = sphere.get(url, timeout=HTTP_TIMEOUT)
        polls += 1
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        op = r.json()
        state = op["State"]
        if state in (COMPLETE, FAILED, COMPLETE_WITH_ERRORS):
            return op, polls
        assert state in (NOT_STARTED, IN_PROGRESS), op
        assert time.monotonic() < deadline, f"operation {op_id} still in State {state} after {timeout} s"
        time.sleep(retry_after_seconds(r.headers))


# --- flows that need the emulated initiator (serve --demo) ------------------


def test_image_upload_polls_to_complete(longrun, sphere):
    op = upload_image(longrun, sphere)
    uuid.UUID(op["OperationId"])
    assert op["OperationType"] == IMAGE_UPLOAD
    assert op["TenantId"] == longrun.tenant
    assert op["State"] in (NOT_STARTED, IN_PROGRESS)
    assert op["Error"] is None
    assert_rfc3339_utc(op["CreatedDateUTC"], "CreatedDateUTC")

    final, polls = wait_for_operation(longrun, sphere, op["OperationId"])
    assert final["State"] == COMPLETE
    assert final["OperationId"] == op["OperationId"]
    assert final["Error"] is None
    assert_rfc3339_utc(final["CompletedDateUTC"], "CompletedDateUTC")
    assert polls >= 2, "the demo script takes ~3 s: more than one poll"


def test_image_upload_that_fails(longrun, sphere, native):
    op = upload_image(longrun, sphere)
    native.patch(op["OperationId"], {"state": "Failed",
                                     "error": {"code": "OperationFailed", "message": "image signature invalid"}})
    final, _ = wait_for_operation(longrun, sphere, op["OperationId"])
    assert final["State"] == FAILED
    assert final["Error"] == {"Code": 0, "Message": "image signature invalid"}


def test_image_upload_with_wrong_key_is_401(longrun):
    r = requests.post(
        f"{longrun.base_url}/v2/tenants/{longrun.tenant}/images",
        data=b"\x00",
        headers={"Authorization": "Bearer not-a-valid-key", "Content-Type": "application/octet-stream"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 401
    errors = r.json()
    assert isinstance(errors, list) and errors[0]["Status"] == 401


# --- polling only: works on any build with the native API -------------------


def test_poll_operation_made_natively(longrun, sphere, native):
    created = native.create(f"tenants/{longrun.tenant}", "imageUpload")
    op_id = op_id_from(created.headers["Operation-Location"])
    r = sphere.get(f"{longrun.base_url}/v2/tenants/{longrun.tenant}/operations/{op_id}", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    op = r.json()
    assert op["State"] == NOT_STARTED and op["OperationType"] == IMAGE_UPLOAD
    assert r.headers["Retry-After"] == str(longrun.retry_after)

    native.patch(op_id, {"state": "Running", "percentComplete": 40})
    native.patch(op_id, {"state": "Succeeded", "resourceLocation": f"/v2/tenants/{longrun.tenant}/images/{uuid.uuid4()}"})
    final, polls = wait_for_operation(longrun, sphere, op_id)
    assert polls == 1
    assert final["State"] == COMPLETE
    assert final["ResourceLocation"].startswith(f"/v2/tenants/{longrun.tenant}/images/")
    assert_rfc3339_utc(final["StartedDateUTC"], "StartedDateUTC")
    assert_rfc3339_utc(final["CompletedDateUTC"], "CompletedDateUTC")


def test_canceled_reads_failed_with_code_0(longrun, sphere, native):
    op_id = op_id_from(native.create(f"tenants/{longrun.tenant}", "imageUpload").headers["Operation-Location"])
    native.cancel(op_id)
    final, _ = wait_for_operation(longrun, sphere, op_id)
    assert final["State"] == FAILED
    assert final["Error"]["Code"] == 0
    assert "cancel" in final["Error"]["Message"].lower()


def test_unknown_operation_is_problem_json_404(longrun, sphere):
    r = sphere.get(f"{longrun.base_url}/v2/tenants/{longrun.tenant}/operations/{uuid.uuid4()}", timeout=HTTP_TIMEOUT)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")
    errors = r.json()
    assert isinstance(errors, list) and errors[0]["Status"] == 404
    assert errors[0]["ErrorCode"] == "OperationNotFound"
