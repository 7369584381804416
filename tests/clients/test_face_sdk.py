"""Face snapshot (seed 002, SPEC §2.3/§2.5) through the published Python SDK,
azure-cognitiveservices-vision-face 0.6.1 on msrest, used the way
Microsoft's Face quickstart uses it: take/apply with raw=True, the operation
id cut out of the relative Operation-Location with .replace('/operations/',
''), then get_operation_status until status.lower() is terminal.

What the SDK sends (operations/_snapshot_operations.py):
- take:  POST {endpoint}/face/v1.0/snapshots, Content-Type
  application/json; charset=utf-8, body {"type", "objectId", "applyScope"[,
  "userData"]}; anything but 202 raises APIErrorException; it never parses
  the 202 body, only copies the Operation-Location header into the raw
  response.
- apply: POST {endpoint}/face/v1.0/snapshots/{snapshotId}/apply, body
  {"objectId", "mode": "CreateNew"}, same 202 handling.
- get_operation_status: GET {endpoint}/face/v1.0/operations/{id}, Accept
  application/json; only 200 is success; the body is deserialized as
  OperationStatus (status matched case-insensitively against the enum
  notstarted/running/succeeded/failed).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from azure.cognitiveservices.vision.face import FaceClient
from azure.cognitiveservices.vision.face.models import (
    APIErrorException,
    OperationStatusType,
    SnapshotObjectType,
)
from msrest.authentication import CognitiveServicesCredentials

from lrhelpers import HTTP_TIMEOUT, LRO_TIMEOUT, op_id_from, retry_after_seconds

TERMINAL = {"succeeded", "failed"}


def face_client(longrun, key: str) -> FaceClient:
    client = FaceClient(longrun.base_url, CognitiveServicesCredentials(key))
    client.config.connection.timeout = HTTP_TIMEOUT
    return client


def wait_for_operation(client: FaceClient, operation_id: str, timeout: float = LRO_TIMEOUT):
    """The quickstart's wait loop, honouring Retry-After instead of 10 s.

    Returns (final OperationStatus, the raw responses seen)."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        raw = client.snapshot.get_operation_status(operation_id, raw=True, timeout=HTTP_TIMEOUT)
        seen.append(raw.response)
        result = raw.output
        status = result.status.lower()  # as the quickstart does
        assert status in {"notstarted", "running", "succeeded", "failed"}, status
        if status in TERMINAL:
            return result, seen
        assert time.monotonic() < deadline, f"operation {operation_id} still {status} after {timeout} s"
        time.sleep(retry_after_seconds(raw.response.headers))


def take(client: FaceClient, object_id: str = "my-person-group"):
    raw = client.snapshot.take(
        type=SnapshotObjectType.person_group,
        object_id=object_id,
        apply_scope=[str(uuid.uuid4())],
        raw=True,
        timeout=HTTP_TIMEOUT,
    )
    return raw


@pytest.fixture
def client(longrun) -> FaceClient:
    return face_client(longrun, longrun.face_key)


# --- flows that need the emulated initiators (serve --demo) -----------------


def test_take_then_poll_until_succeeded(longrun, client):
    raw = take(client)
    assert raw.response.status_code == 202
    assert raw.response.content == b"", "a take answers 202 with an empty body"
    location = raw.headers["Operation-Location"]
    assert location.startswith("/operations/"), (
        "Face's Operation-Location is the relative /operations/{id} the quickstart strips"
    )
    operation_id = location.replace("/operations/", "")
    assert str(uuid.UUID(operation_id)) == operation_id.lower()

    # What the SDK sent, exactly.
    sent = raw.response.request
    assert sent.method == "POST"
    assert sent.url == f"{longrun.base_url}/face/v1.0/snapshots"
    body = json.loads(sent.body)
    assert body["type"] == "PersonGroup" and body["objectId"] == "my-person-group"

    result, seen = wait_for_operation(client, operation_id)
    assert result.status == OperationStatusType.succeeded
    assert result.status.lower() == "succeeded"
    assert result.created_time is not None and result.created_time.tzinfo is not None
    assert result.last_action_time is not None
    assert result.message is None
    # resourceLocation names the snapshot: /snapshots/{uuid}
    assert result.resource_location.startswith("/snapshots/")
    snapshot_id = result.resource_location.replace("/snapshots/", "")
    uuid.UUID(snapshot_id)
    # The demo script takes ~3 s at Retry-After 1: several polls, not one.
    assert len(seen) >= 2
    for response in seen[:-1]:
        assert response.headers.get("Retry-After") == str(longrun.retry_after)


def test_take_then_apply(longrun, client):
    taken, _ = wait_for_operation(client, take(client).headers["Operation-Location"].replace("/operations/", ""))
    assert taken.status.lower() == "succeeded"
    snapshot_id = taken.resource_location.replace("/snapshots/", "")

    raw = client.snapshot.apply(snapshot_id=snapshot_id, object_id=str(uuid.uuid4()), raw=True, timeout=HTTP_TIMEOUT)
    assert raw.response.status_code == 202
    assert raw.response.request.url == f"{longrun.base_url}/face/v1.0/snapshots/{snapshot_id}/apply"
    assert json.loads(raw.response.request.body)["mode"] == "CreateNew"
    location = raw.headers["Operation-Location"]
    assert location.startswith("/operations/")
    applied, _ = wait_for_operation(client, location.replace("/operations/", ""))
    assert applied.status.lower() == "succeeded"


def test_take_that_fails_surfaces_message(longrun, client, native):
    operation_id = op_id_from(take(client).headers["Operation-Location"])
    message = "The source person group was modified while the snapshot was taken."
    native.patch(operation_id, {"state": "Failed", "error": {"code": "SnapshotTakeFailed", "message": message}})
    result, _ = wait_for_operation(client, operation_id)
    assert result.status.lower() == "failed"
    assert result.message == message
    # The operation keeps its Failed state: the demo script does not move it on.
    time.sleep(3.5)
    again, _ = wait_for_operation(client, operation_id)
    assert again.status.lower() == "failed" and again.message == message


def test_take_that_is_canceled_reads_failed(longrun, client, native):
    operation_id = op_id_from(take(client).headers["Operation-Location"])
    native.cancel(operation_id)
    result, _ = wait_for_operation(client, operation_id)
    # Face has no Canceled status: failed with a message (SPEC §2.3).
    assert result.status.lower() == "failed"
    assert result.message and "cancel" in result.message.lower()


def test_take_with_wrong_key_is_401(longrun):
    with pytest.raises(APIErrorException) as info:
        take(face_client(longrun, "not-a-valid-key"))
    assert info.value.response.status_code == 401
    assert info.value.error.error.code == "401"


# --- polling only: works on any build with the native API -------------------


def test_sdk_polls_operation_made_natively(longrun, client, native):
    created = native.create(f"accounts/{longrun.account}", "takeSnapshot")
    operation_id = op_id_from(created.headers["Operation-Location"])

    status = client.snapshot.get_operation_status(operation_id, timeout=HTTP_TIMEOUT)
    assert status.status == OperationStatusType.notstarted  # wire: "notStarted"

    native.patch(operation_id, {"state": "Running", "percentComplete": 40})
    assert client.snapshot.get_operation_status(operation_id).status.lower() == "running"

    snapshot = f"/snapshots/{uuid.uuid4()}"
    native.patch(operation_id, {"state": "Succeeded", "resourceLocation": snapshot})
    raw = client.snapshot.get_operation_status(operation_id, raw=True, timeout=HTTP_TIMEOUT)
    assert raw.response.headers["Content-Type"].startswith("application/json")
    assert raw.response.request.url == f"{longrun.base_url}/face/v1.0/operations/{operation_id}"
    result = raw.output
    assert result.status == OperationStatusType.succeeded
    assert result.resource_location == snapshot
    assert result.message is None
    body = raw.response.json()
    assert body["finishedTime"].endswith("Z")


def test_wrong_key_raises_api_error_401(longrun):
    client = face_client(longrun, "not-a-valid-key")
    with pytest.raises(APIErrorException) as info:
        client.snapshot.get_operation_status(str(uuid.uuid4()), timeout=HTTP_TIMEOUT)
    assert info.value.response.status_code == 401
    assert info.value.error.error.code == "401"
    assert info.value.error.error.message.startswith("Access denied due to invalid subscription key")
    # msrest formats the exception text from the envelope.
    assert str(info.value).startswith("(401) Access denied")


def test_unknown_operation_raises_api_error_404(client):
    with pytest.raises(APIErrorException) as info:
        client.snapshot.get_operation_status(str(uuid.uuid4()), timeout=HTTP_TIMEOUT)
    assert info.value.response.status_code == 404
    assert info.value.error.error.code == "OperationNotFound"
    assert info.value.error.error.message


def test_operation_of_another_scope_is_404(longrun, client, native):
    created = native.create(f"projects/{longrun.project}", "deleteDevBox")
    with pytest.raises(APIErrorException) as info:
        client.snapshot.get_operation_status(op_id_from(created.headers["Operation-Location"]))
    assert info.value.response.status_code == 404
    assert info.value.error.error.code == "OperationNotFound"
