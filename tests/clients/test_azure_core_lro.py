"""azure-core's generic LRO machinery (LROPoller + LROBasePolling) pointed
at longrun's native create, following the Operation-Location it returns into
each dialect. This is what any generated Azure SDK does with an
Operation-Location, so it pins how longrun's dialect bodies read to it.

How LROBasePolling reads each body (azure/core/polling/base_polling.py,
OperationResourcePolling.get_status): `body["status"]`, compared lower-case
with succeeded / failed / canceled; anything else keeps polling; no
`status` at all raises BadResponse → HttpResponseError("No status found in
body").
- native create (201): body has `state`, not `status`; set_initial_status
  swallows that and starts as "InProgress".
- Dev Center: `status` NotStarted/Running/Succeeded/Failed/Canceled → works.
- Face: `status` notStarted/running/succeeded/failed → works (lower-cased).
- Sphere: PascalCase `State` integers, no `status` → the poller fails on the
  first poll. Sphere has no SDK using azure-core, so this is documented, not
  fixed.
After success, for a POST it makes one final GET: to the body's
`resourceLocation` if the last poll had one, else to the initial response's
`Location` (native: /v1/operations/{id}).
"""

from __future__ import annotations

import json
import uuid

import pytest
from azure.core import PipelineClient
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest

from lrhelpers import HTTP_TIMEOUT, LRO_TIMEOUT, Driver, KeyHeadersPolicy, Recorder

# LROBasePolling's fallback delay when a response has no Retry-After. Set
# high on purpose: a poll gap near it means longrun forgot Retry-After.
NO_RETRY_AFTER_DELAY = 30


def pipeline(recorder: Recorder, key: str) -> PipelineClient:
    # "{endpoint}" + path_format_arguments, exactly as generated clients do:
    # LROBasePolling joins a relative Operation-Location to the endpoint only
    # when it was given path_format_arguments (see the test at the end).
    return PipelineClient(
        base_url="{endpoint}",
        policies=[
            RequestIdPolicy(),  # LROBasePolling re-sends the initial x-ms-client-request-id
            HeadersPolicy(),
            RetryPolicy(retry_total=1),
            recorder,
            KeyHeadersPolicy(key),
        ],
        transport=RequestsTransport(connection_timeout=HTTP_TIMEOUT, read_timeout=HTTP_TIMEOUT),
    )


def begin(longrun, scope: str, kind: str, path_format_arguments=True, **extra):
    """POST /v1/operations and hand the 201 to an LROPoller."""
    recorder = Recorder()
    client = pipeline(recorder, longrun.admin_key)
    endpoint = {"endpoint": longrun.base_url}
    request = HttpRequest("POST", client.format_url("/v1/operations", **endpoint),
                          json={"scope": scope, "kind": kind, **extra})
    initial = client.send_request(request, _return_pipeline_response=True)
    assert initial.http_response.status_code == 201, initial.http_response.text()
    poller = LROPoller(
        client,
        initial,
        lambda pipeline_response: pipeline_response.http_response.json(),
        LROBasePolling(
            timeout=NO_RETRY_AFTER_DELAY,
            path_format_arguments=endpoint if path_format_arguments else None,
        ),
    )
    op_id = initial.http_response.json()["id"]
    return poller, recorder, op_id, initial.http_response


def finish(poller):
    try:
        return poller.result(timeout=LRO_TIMEOUT)
    finally:
        assert poller.done(), f"poller still running after {LRO_TIMEOUT} s"


def dialect_paths(longrun, op_id):
    return {
        "projects": f"/projects/{longrun.project}/operationstatuses/{op_id}",
        "accounts": f"/face/v1.0-preview/operations/{op_id}",
    }


CASES = {
    # scope prefix → (kind, the word the dialect's body uses for Succeeded)
    "projects": ("deleteDevBox", "Succeeded"),
    "accounts": ("takeSnapshot", "succeeded"),
}


def scope_of(longrun, which: str) -> str:
    return {"projects": f"projects/{longrun.project}", "accounts": f"accounts/{longrun.account}",
            "tenants": f"tenants/{longrun.tenant}"}[which]


@pytest.mark.parametrize("which", sorted(CASES))
def test_poller_follows_operation_location_and_honours_retry_after(longrun, native, which):
    kind, succeeded = CASES[which]
    poller, recorder, op_id, created = begin(longrun, scope_of(longrun, which), kind)
    status_path = dialect_paths(longrun, op_id)[which]
    assert created.headers["Operation-Location"].split("?")[0] == status_path
    assert created.headers["Retry-After"] == str(longrun.retry_after)

    driver = Driver(native, op_id, [
        (1.2, {"state": "Running", "percentComplete": 40}),
        (2.5, {"state": "Succeeded"}),
    ]).start()
    result = finish(poller)
    driver.join()

    assert poller.status() == succeeded
    polls = recorder.matching("GET", "^" + status_path.replace(".", r"\.") + "$")
    assert polls, "the poller never polled the Operation-Location"
    # Retry-After: 1 means one poll a second: never faster, and nowhere near
    # the 30 s LROBasePolling falls back to without the header.
    gaps = [b.at - a.at for a, b in zip(polls, polls[1:])]
    assert all(0.9 * longrun.retry_after <= g <= longrun.retry_after + 1.5 for g in gaps), gaps
    # Polls started right after create and stopped at the first one after
    # Succeeded landed: about 2.5 s at one a second → 3 to 5 polls.
    seen = [json.loads(p.text)["status"] for p in polls]
    assert seen[-1] == succeeded and succeeded not in seen[:-1], seen
    assert 3 <= len(polls) <= 5, [round(p.at - polls[0].at, 2) for p in polls]
    for poll in polls[:-1]:
        assert poll.headers.get("Retry-After") == str(longrun.retry_after)

    # Final GET: POST + Location → the native resource, which is the result.
    finals = recorder.matching("GET", rf"^/v1/operations/{op_id}$")
    assert len(finals) == 1
    assert result["id"] == op_id and result["state"] == "Succeeded"


@pytest.mark.parametrize("which", sorted(CASES))
def test_poller_raises_on_failed_with_the_error(longrun, native, which):
    kind, _ = CASES[which]
    poller, _, op_id, _ = begin(longrun, scope_of(longrun, which), kind)
    native.patch(op_id, {"state": "Failed", "error": {"code": "DiskLocked", "message": "The disk is locked."}})
    with pytest.raises(HttpResponseError) as info:
        finish(poller)
    assert poller.status().lower() == "failed"
    error = info.value.error
    assert error is not None
    assert error.message == "The disk is locked."
    if which == "projects":
        assert error.code == "DiskLocked"  # Azure.Core error object
    else:
        assert error.code is None  # Face bodies carry only `message`


@pytest.mark.parametrize("which", sorted(CASES))
def test_poller_ends_on_canceled(longrun, native, which):
    kind, _ = CASES[which]
    poller, _, op_id, _ = begin(longrun, scope_of(longrun, which), kind)
    native.cancel(op_id)
    with pytest.raises(HttpResponseError):
        finish(poller)
    # Dev Center says Canceled; Face has no such status and says failed.
    assert poller.status() == {"projects": "Canceled", "accounts": "failed"}[which]


def test_face_resource_location_becomes_the_final_get(longrun, native):
    """Documents azure-core: a Face body's resourceLocation (/snapshots/{id},
    relative to the Face base, not to the host) is where LROBasePolling goes
    for the final GET — outside any route longrun serves, so the generic
    poller ends in an error after a success. The Face SDK never uses
    LROBasePolling, so this only bites hand-rolled azure-core callers."""
    poller, recorder, op_id, _ = begin(longrun, f"accounts/{longrun.account}", "takeSnapshot")
    snapshot = f"/snapshots/{uuid.uuid4()}"
    native.patch(op_id, {"state": "Succeeded", "resourceLocation": snapshot})
    with pytest.raises(HttpResponseError):
        finish(poller)
    (final,) = recorder.matching("GET", "^" + snapshot + "$")
    assert final.status == 404
    # azure-core marks the poller Failed when the final GET is not 2xx.
    assert poller.status() == "Failed"


def test_sphere_body_has_no_status_for_lro_base_polling(longrun, native):
    """Documents azure-core: Sphere's Operation has integer `State`, no
    `status`; LROBasePolling gives up on the first poll."""
    poller, recorder, op_id, created = begin(longrun, f"tenants/{longrun.tenant}", "imageUpload")
    status_path = f"/v2/tenants/{longrun.tenant}/operationTypes/imageUpload/operations/{op_id}"
    assert created.headers["Operation-Location"] == status_path
    with pytest.raises(HttpResponseError, match="No status found in body"):
        finish(poller)
    polls = recorder.matching("GET", "^" + status_path + "$")
    assert len(polls) == 1
    assert polls[0].status == 200


def test_relative_operation_location_needs_path_format_arguments(longrun):
    """Documents azure-core: LROBasePolling.request_status joins a relative
    Operation-Location to the client's endpoint only through
    path_format_arguments (generated clients always pass {"endpoint": …}).
    A hand-built poller without them sends the bare path and the transport
    refuses it before anything reaches longrun."""
    poller, recorder, op_id, _ = begin(
        longrun, f"projects/{longrun.project}", "deleteDevBox", path_format_arguments=False
    )
    with pytest.raises(AzureError, match="No scheme supplied"):
        finish(poller)
    assert [e.method for e in recorder.exchanges] == ["POST"]
