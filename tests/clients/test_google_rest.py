"""google.longrunning.Operations over HTTP/JSON, with the unchanged
google-api-core REST client (`operations_v1.AbstractOperationsClient`).

The client parses every response strictly (proto3 JSON into the real
`operations_pb2` messages, unknown fields refused), so each test also
checks that longrun speaks exactly Google's wire shape.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from google.api_core import client_options, exceptions, operations_v1
from google.oauth2.credentials import Credentials
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2

from conftest import create_key, longrun_bin

SCOPE = "projects/googlerest"


def rest_client(longrun, key: str) -> operations_v1.AbstractOperationsClient:
    """The REST client pointed at longrun, its bearer token a longrun key."""
    return operations_v1.AbstractOperationsClient(
        client_options=client_options.ClientOptions(api_endpoint=longrun.base_url),
        credentials=Credentials(token=key),
    )


def struct(any_message) -> dict:
    value = struct_pb2.Struct()
    assert any_message.Unpack(value), any_message.type_url
    return json_format.MessageToDict(value)


@pytest.fixture
def client(longrun):
    return rest_client(longrun, longrun.admin_key)


def test_get_reads_every_state_into_the_real_operation_message(longrun, native, client):
    created = native.create(SCOPE, "resize", properties={"w": 64}).json()
    name = f"{SCOPE}/operations/{created['id']}"
    op = client.get_operation(name)
    assert op.name == name
    assert not op.done
    assert struct(op.metadata)["state"] == "NotStarted"
    assert struct(op.metadata)["kind"] == "resize"

    native.patch(created["id"], {"state": "Succeeded", "resourceLocation": "/images/1"})
    op = client.get_operation(name)
    assert op.done and op.WhichOneof("result") == "response"
    assert struct(op.response) == {"resourceLocation": "/images/1", "properties": {"w": 64.0}}

    failed = native.create(SCOPE, "resize").json()
    native.patch(failed["id"], {"state": "Failed", "error": {"code": "PermissionDenied", "message": "no access"}})
    op = client.get_operation(f"{SCOPE}/operations/{failed['id']}")
    assert op.done and op.error.code == 7 and op.error.message == "no access"
    info = error_details_pb2.ErrorInfo()
    assert op.error.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("PERMISSION_DENIED", "longrun")

    canceled = native.create(SCOPE, "resize").json()
    native.cancel(canceled["id"])
    op = client.get_operation(f"{SCOPE}/operations/{canceled['id']}")
    assert op.done and op.error.code == 1


def test_list_pages_through_everything_and_filters(longrun, native, client):
    scope = f"projects/gl{uuid.uuid4().hex[:8]}"
    ids = [native.create(scope, kind).json()["id"] for kind in ["aaa", "bbb", "aaa", "bbb", "aaa"]]
    native.patch(ids[0], {"state": "Running"})
    listed = [op.name for op in client.list_operations(scope, page_size=2)]
    assert listed == [f"{scope}/operations/{i}" for i in reversed(ids)], "the pager follows nextPageToken"
    running = list(client.list_operations(scope, filter_='state = "Running"'))
    assert [op.name for op in running] == [f"{scope}/operations/{ids[0]}"]
    assert len(list(client.list_operations(scope, filter_='kind = "aaa" AND done = false'))) == 3
    with pytest.raises(exceptions.BadRequest) as refused:
        list(client.list_operations(scope, filter_="colour = blue"))
    assert "colour" in str(refused.value)


def test_cancel_ends_the_operation_cancelled_and_needs_a_producer(longrun, native, client):
    created = native.create(SCOPE, "resize").json()
    name = f"{SCOPE}/operations/{created['id']}"
    reader_key = create_key(longrun_bin(), longrun.data_dir, SCOPE, "read")
    with pytest.raises(exceptions.Forbidden):
        rest_client(longrun, reader_key).cancel_operation(name)
    client.cancel_operation(name)
    op = client.get_operation(name)
    assert op.done and op.error.code == 1


def test_another_scopes_name_is_as_missing_as_a_name_that_never_was(longrun, native):
    theirs = native.create("projects/someoneelse", "resize").json()["id"]
    mine = rest_client(longrun, create_key(longrun_bin(), longrun.data_dir, SCOPE, "admin"))
    with pytest.raises(exceptions.NotFound) as other:
        mine.get_operation(f"{SCOPE}/operations/{theirs}")
    with pytest.raises(exceptions.NotFound) as missing:
        mine.get_operation(f"{SCOPE}/operations/{uuid.uuid4()}")
    assert other.value.message.replace(theirs, "ID") == missing.value.message.replace(
        missing.value.message.split("'")[1], "ID"
    )
    # A wrong key: the client's session answers a 401 by refreshing its
    # credentials (static ones cannot), so read the refusal itself.
    refused = requests.get(
        f"{longrun.base_url}/v1/{SCOPE}/operations/{theirs}",
        headers={"Authorization": "Bearer lr_not_a_key"},
        timeout=10,
    )
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"]["status"] == "UNAUTHENTICATED"


def test_delete_forgets_a_finished_operation_and_refuses_a_running_one(longrun, native, client):
    finished = native.create(SCOPE, "resize").json()["id"]
    native.patch(finished, {"state": "Succeeded"})
    client.delete_operation(f"{SCOPE}/operations/{finished}")
    with pytest.raises(exceptions.NotFound):
        client.get_operation(f"{SCOPE}/operations/{finished}")
    running = native.create(SCOPE, "resize").json()["id"]
    # Over REST the client picks the exception by HTTP status: FAILED_PRECONDITION is 400, as at Google.
    with pytest.raises(exceptions.BadRequest) as refused:
        client.delete_operation(f"{SCOPE}/operations/{running}")
    assert refused.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert not client.get_operation(f"{SCOPE}/operations/{running}").done, "deleting never cancels"
