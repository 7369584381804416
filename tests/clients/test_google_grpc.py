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

from conftest import create_key, longrun_bin, start, stop

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


def test_a_routing_header_sent_many_times_is_accepted(longrun, native):
    stub = operations_pb2_grpc.OperationsStub(channel(longrun, longrun.admin_key))
    op_id = native.create(SCOPE, "resize").json()["id"]
    name = f"{SCOPE}/operations/{op_id}"
    repeated = [("x-goog-request-params", f"name={name}")] * 40
    assert stub.GetOperation(operations_pb2.GetOperationRequest(name=name), metadata=repeated, timeout=10).name == name


def test_an_unknown_method_is_unimplemented(longrun):
    call = channel(longrun, longrun.admin_key).unary_unary(
        "/google.longrunning.Operations/PauseOperation",
        request_serializer=operations_pb2.GetOperationRequest.SerializeToString,
        response_deserializer=operations_pb2.Operation.FromString,
    )
    with pytest.raises(grpc.RpcError) as refused:
        call(operations_pb2.GetOperationRequest(name=f"{SCOPE}/operations/{uuid.uuid4()}"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED


RATE = 5  # requests per second per key on the TLS server below (bursts of twice that)


@pytest.fixture(scope="module")
def grpc_over_tls(tmp_path_factory):
    """A second server: gRPC over TLS (the data dir's development
    certificate) and a low per-key rate limit."""
    binary = longrun_bin()
    work = tmp_path_factory.mktemp("longrun-grpc-tls")
    data_dir = work / "data"
    with open(work / "server.log", "w") as log:
        args = ["--tls", "--grpc-listen", "127.0.0.1:0", "--rate-limit", str(RATE)]
        proc, _, target = start(binary, data_dir, log, args)
        try:
            yield target, (data_dir / "tls" / "dev-ca.pem").read_bytes(), create_key(binary, data_dir, SCOPE, "read")
        finally:
            stop(proc)


def tls_client(target: str, ca: bytes, key: str) -> operations_v1.OperationsClient:
    secure = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=ca))
    return operations_v1.OperationsClient(grpc.intercept_channel(secure, Bearer(key)))


def test_grpc_is_served_over_tls_to_clients_that_trust_the_certificate(grpc_over_tls):
    target, ca, key = grpc_over_tls
    missing = f"{SCOPE}/operations/{uuid.uuid4()}"
    with pytest.raises(exceptions.NotFound):
        tls_client(target, ca, key).get_operation(missing, retry=None, timeout=10)
    plain = operations_v1.OperationsClient(grpc.intercept_channel(grpc.insecure_channel(target), Bearer(key)))
    with pytest.raises(exceptions.ServiceUnavailable):
        plain.get_operation(missing, retry=None, timeout=10)


def test_a_key_over_its_rate_gets_resource_exhausted_with_a_retry_delay(grpc_over_tls):
    target, ca, key = grpc_over_tls
    client = tls_client(target, ca, key)
    refused = None
    for _ in range(4 * RATE):
        try:
            list(client.list_operations(SCOPE, "", retry=None, timeout=10))
        except exceptions.ResourceExhausted as e:
            refused = e
            break
    assert refused is not None, f"{4 * RATE} calls within the burst of {2 * RATE}"
    assert refused.reason == "TOO_MANY_REQUESTS" and refused.domain == "longrun"
    delays = [d.retry_delay.seconds for d in refused.details if hasattr(d, "retry_delay")]
    assert delays and delays[0] >= 1, refused.details
