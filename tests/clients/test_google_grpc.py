"""google.longrunning.Operations over gRPC (`serve --grpc-listen`), with the
unchanged google-api-core `operations_v1.OperationsClient` and the
`operation.from_gapic(...)` futures Google's client libraries hand out,
plus the generated stub for WaitOperation (which the client lacks).
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.api_core import exceptions, operation, operations_v1
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, json_format, struct_pb2

from conftest import create_key, longrun_bin

SCOPE = "projects/googlegrpc"


class Bearer(grpc.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer KEY` to every call, as a longrun key is
    presented over HTTP."""

    def __init__(self, key: str) -> None:
        self.key = key

    def intercept_unary_unary(self, continuation, details, request):
        metadata = list(details.metadata or []) + [("authorization", f"Bearer {self.key}")]
        return continuation(details._replace(metadata=metadata), request)


def channel(longrun, key: str) -> grpc.Channel:
    return grpc.intercept_channel(grpc.insecure_channel(longrun.grpc_target), Bearer(key))


@pytest.fixture
def client(longrun):
    return operations_v1.OperationsClient(channel(longrun, longrun.admin_key))


def struct(any_message) -> dict:
    value = struct_pb2.Struct()
    assert any_message.Unpack(value), any_message.type_url
    return json_format.MessageToDict(value)


def scripted(native, scope: str, last: dict) -> str:
    """An operation that runs, then ends as `last` ~1.5 s after creation."""
    steps = [{"after": "500ms", "state": "Running", "percentComplete": 50}, {"after": "1500ms", **last}]
    return native.create(scope, "resize", properties={"w": 64}, script=steps).json()["id"]


def future(client, scope: str, op_id: str) -> operation.Operation:
    first = client.get_operation(f"{scope}/operations/{op_id}")
    return operation.from_gapic(first, client, struct_pb2.Struct, metadata_type=struct_pb2.Struct)


def test_a_future_returns_the_response_of_a_success(longrun, native, client):
    op_id = scripted(native, SCOPE, {"state": "Succeeded", "resourceLocation": "/images/9"})
    waited = future(client, SCOPE, op_id)
    result = waited.result(timeout=30)
    assert json_format.MessageToDict(result) == {"resourceLocation": "/images/9", "properties": {"w": 64.0}}
    assert waited.done() and json_format.MessageToDict(waited.metadata)["state"] == "Succeeded"


def test_a_future_raises_the_google_error_a_failure_names(longrun, native, client):
    op_id = scripted(native, SCOPE, {"state": "Failed", "error": {"code": "DEADLINE_EXCEEDED", "message": "slow"}})
    with pytest.raises(exceptions.DeadlineExceeded, match="slow"):
        future(client, SCOPE, op_id).result(timeout=30)
    op_id = scripted(native, SCOPE, {"state": "Failed", "error": {"code": "DiskFull", "message": "full"}})
    with pytest.raises(exceptions.Unknown, match="full"):
        future(client, SCOPE, op_id).result(timeout=30)


def test_a_cancelled_operation_raises_cancelled_and_a_partial_success_returns(longrun, native, client):
    op_id = native.create(SCOPE, "resize").json()["id"]
    waited = future(client, SCOPE, op_id)
    client.cancel_operation(f"{SCOPE}/operations/{op_id}")
    with pytest.raises(exceptions.Cancelled):
        waited.result(timeout=30)
    op_id = scripted(
        native, SCOPE, {"state": "CompleteWithErrors", "error": {"code": "SomeSkipped", "message": "2 of 9"}}
    )
    waited = future(client, SCOPE, op_id)
    assert json_format.MessageToDict(waited.result(timeout=30))["properties"] == {"w": 64.0}
    assert json_format.MessageToDict(waited.metadata)["partialError"] == {"code": "SomeSkipped", "message": "2 of 9"}


def test_list_pages_and_filters_over_grpc(longrun, native, client):
    scope = f"projects/gg{uuid.uuid4().hex[:8]}"
    ids = [native.create(scope, kind).json()["id"] for kind in ["aaa", "bbb", "aaa"]]
    native.patch(ids[1], {"state": "Succeeded"})
    newest_first = [f"{scope}/operations/{i}" for i in reversed(ids)]
    assert [op.name for op in client.list_operations(scope, "")] == newest_first
    # The client's pager takes no page size: walk pages of one with the stub.
    stub = operations_pb2_grpc.OperationsStub(channel(longrun, longrun.admin_key))
    walked, token = [], ""
    while True:
        page = stub.ListOperations(operations_pb2.ListOperationsRequest(name=scope, page_size=1, page_token=token))
        walked += [op.name for op in page.operations]
        token = page.next_page_token
        if not token:
            break
    assert walked == newest_first
    assert [op.name for op in client.list_operations(scope, "done = true")] == [f"{scope}/operations/{ids[1]}"]
    with pytest.raises(exceptions.InvalidArgument):
        list(client.list_operations(scope, "done = sometimes"))


def test_wait_operation_returns_when_done_within_the_deadline(longrun, native):
    stub = operations_pb2_grpc.OperationsStub(channel(longrun, longrun.admin_key))
    op_id = scripted(native, SCOPE, {"state": "Succeeded"})
    name = f"{SCOPE}/operations/{op_id}"
    request = operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=20))
    done = stub.WaitOperation(request, timeout=25)
    assert done.done and done.WhichOneof("result") == "response"
    pending = native.create(SCOPE, "resize").json()["id"]
    short = operations_pb2.WaitOperationRequest(name=f"{SCOPE}/operations/{pending}")
    # The call's own deadline bounds the wait: the latest state, not DEADLINE_EXCEEDED.
    assert not stub.WaitOperation(short, timeout=1.0).done


def test_names_of_other_scopes_are_missing_and_keys_need_their_roles(longrun, native):
    theirs = native.create("projects/grpcothers", "resize").json()["id"]
    mine = operations_v1.OperationsClient(channel(longrun, create_key(longrun_bin(), longrun.data_dir, SCOPE, "read")))
    with pytest.raises(exceptions.NotFound) as other:
        mine.get_operation(f"{SCOPE}/operations/{theirs}")
    missing = str(uuid.uuid4())
    with pytest.raises(exceptions.NotFound) as nowhere:
        mine.get_operation(f"{SCOPE}/operations/{missing}")
    assert other.value.message.replace(theirs, "ID") == nowhere.value.message.replace(missing, "ID")
    own = native.create(SCOPE, "resize").json()["id"]
    with pytest.raises(exceptions.PermissionDenied):
        mine.cancel_operation(f"{SCOPE}/operations/{own}")
    anonymous = operations_v1.OperationsClient(grpc.insecure_channel(longrun.grpc_target))
    with pytest.raises(exceptions.Unauthenticated):
        anonymous.get_operation(f"{SCOPE}/operations/{own}")
    with pytest.raises(exceptions.InvalidArgument):
        mine.get_operation("operations/not-a-name")
    with pytest.raises(exceptions.PermissionDenied):
        mine.delete_operation(f"{SCOPE}/operations/{own}")


def test_delete_forgets_a_finished_operation_over_grpc(longrun, native, client):
    finished = native.create(SCOPE, "resize").json()["id"]
    native.patch(finished, {"state": "Failed", "error": {"code": "E", "message": "m"}})
    client.delete_operation(f"{SCOPE}/operations/{finished}")
    with pytest.raises(exceptions.NotFound):
        client.get_operation(f"{SCOPE}/operations/{finished}")
    running = native.create(SCOPE, "resize").json()["id"]
    with pytest.raises(exceptions.FailedPrecondition):
        client.delete_operation(f"{SCOPE}/operations/{running}")
