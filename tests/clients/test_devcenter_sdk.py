"""Dev Center (seed 001, SPEC §2.2/§2.5) through azure-developer-devcenter
1.0.0 on azure-core, unchanged.

Auth: the client's BearerTokenCredentialPolicy sends `Authorization: Bearer
<token>` with the token a TokenCredential returns (here: a longrun key), for
scope https://devcenter.azure.com/.default. Over plain http it refuses to
send a token (azure/core/pipeline/policies/_authentication.py,
_enforce_https) unless the call carries `enforce_https=False`; that keyword
is popped into the pipeline context, and a begin_* call hands the same
kwargs to LROBasePolling, so one `enforce_https=False` covers the initial
request and every poll.

What the SDK sends (azure/developer/devcenter/_operations/_operations.py):
- begin_delete_dev_box: DELETE /projects/{p}/users/{u}/devboxes/{name}
  ?api-version=…, Accept: application/json, x-ms-client-request-id; it
  accepts 202 or 204, and on 202 parses the body as JSON (so a 202 needs a
  JSON body) and reads Location and Operation-Location.
- begin_start/stop/restart_dev_box: POST …/devboxes/{name}:start|:stop
  (?hibernate=true|false when given)|:restart ?api-version=…, empty body;
  only 202 is accepted, its body is parsed as JSON.
- Polling (azure/core/polling/base_polling.py, LROBasePolling with
  OperationResourcePolling): GET the Operation-Location verbatim (relative
  joined to the endpoint; no api-version added), Accept */*, the initial
  request's x-ms-client-request-id; reads body `status`, terminal only on
  succeeded/failed/canceled (any case); sleeps Retry-After seconds (0 or
  missing → polling_interval, 30 s by default); failed/canceled raise
  HttpResponseError built from the last poll's body (error.code/.message).
  For POST, once succeeded, it GETs the initial response's Location header
  if there was one (final-state), so start/stop/restart must not send a
  Location that does not answer 200 with the operation's JSON.
- The client's default api-version is 2023-04-01, not 2025-02-01.
"""

from __future__ import annotations

import json
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.core.rest import HttpRequest
from azure.developer.devcenter import DevCenterClient

from lrhelpers import (
    HTTP_TIMEOUT,
    LRO_TIMEOUT,
    Recorder,
    StaticKeyCredential,
    assert_rfc3339_utc,
    op_id_from,
)

API_VERSION = "2025-02-01"
SDK_DEFAULT_API_VERSION = "2023-04-01"
USER = "me"


def make_client(longrun, key=None, **kwargs):
    recorder = Recorder()
    credential = StaticKeyCredential(key or longrun.project_key)
    client = DevCenterClient(
        longrun.base_url,
        credential,
        per_retry_policies=[recorder],
        connection_timeout=HTTP_TIMEOUT,
        read_timeout=HTTP_TIMEOUT,
        retry_total=1,
        **kwargs,
    )
    return client, recorder, credential


@pytest.fixture
def devcenter(longrun):
    client, recorder, credential = make_client(longrun, api_version=API_VERSION)
    with client:
        yield client, recorder, credential


def box() -> str:
    return f"box-{uuid.uuid4().hex[:8]}"


def finish(poller):
    """result() with a bound; a poller still running afterwards is a hang."""
    try:
        return poller.result(timeout=LRO_TIMEOUT)
    finally:
        assert poller.done(), f"poller still running after {LRO_TIMEOUT} s"


# --- flows that need the emulated initiators (serve --demo) -----------------


def test_begin_delete_dev_box_completes(longrun, devcenter):
    client, recorder, credential = devcenter
    name = box()
    poller = client.begin_delete_dev_box(longrun.project, USER, name, enforce_https=False)
    result = finish(poller)

    assert poller.status().lower() == "succeeded"
    assert result["status"] == "Succeeded"
    assert credential.scopes_requested[0] == ("https://devcenter.azure.com/.default",)

    # The initiating call: 202, OperationStatus body, Operation-Location with
    # api-version, Location.
    (initial,) = recorder.matching("DELETE", r"/devboxes/")
    assert initial.path == f"/projects/{longrun.project}/users/{USER}/devboxes/{name}"
    assert f"api-version={API_VERSION}" in initial.query
    assert initial.request_headers["Authorization"] == f"Bearer {longrun.project_key}"
    assert initial.status == 202
    body = json.loads(initial.text)
    op_id = body["name"]
    assert body["id"] == f"/projects/{longrun.project}/operationStatuses/{op_id}"
    assert body["status"] in ("NotStarted", "Running")
    location = initial.headers["Operation-Location"]
    assert "api-version=" in location
    assert op_id_from(location) == op_id
    assert "Location" in initial.headers
    assert initial.headers.get("Retry-After") == str(longrun.retry_after)

    # The polls: the Operation-Location verbatim, about one per Retry-After.
    polls = recorder.matching("GET", r"/operationstatuses/")
    assert len(polls) >= 2, "the demo script takes ~3 s: more than one poll"
    for poll in polls:
        assert poll.path == f"/projects/{longrun.project}/operationstatuses/{op_id}"
        assert "api-version=" in poll.query
        assert poll.request_headers["x-ms-client-request-id"] == initial.request_headers["x-ms-client-request-id"]
        assert poll.headers.get("x-ms-client-request-id") == poll.request_headers["x-ms-client-request-id"]
        assert poll.headers.get("x-ms-request-id")
    for before, after in zip(polls, polls[1:]):
        assert after.at - before.at >= 0.9 * longrun.retry_after
    statuses = [json.loads(p.text)["status"] for p in polls]
    assert statuses[-1] == "Succeeded"
    assert set(statuses) <= {"NotStarted", "Running", "Succeeded"}


@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_begin_power_actions_complete(longrun, devcenter, action):
    client, recorder, _ = devcenter
    name = box()
    begin = getattr(client, f"begin_{action}_dev_box")
    kwargs = {"hibernate": True} if action == "stop" else {}
    poller = begin(longrun.project, USER, name, enforce_https=False, **kwargs)
    result = finish(poller)
    assert result["status"] == "Succeeded"
    (initial,) = recorder.matching("POST", rf"/devboxes/{name}:{action}$")
    assert initial.status == 202
    assert f"api-version={API_VERSION}" in initial.query
    assert "api-version=" in initial.headers["Operation-Location"]
    # A Location on a POST would be fetched at the end (final-state via
    # location); none is the Dev Center shape for these actions.
    assert not [e for e in recorder.exchanges if e.method == "GET" and "/operationstatuses/" not in e.path], (
        "the SDK made a GET that is not a status poll (a Location header on the 202?)"
    )


def test_begin_delete_dev_box_completes_with_a_minted_jwt(longrun):
    """The SDK's TokenCredential hands out a JWT (`longrun token mint`,
    audience https://devcenter.azure.com) instead of an API key."""
    client, recorder, credential = make_client(longrun, key=longrun.project_token, api_version=API_VERSION)
    with client:
        poller = client.begin_delete_dev_box(longrun.project, USER, box(), enforce_https=False)
        result = finish(poller)
    assert result["status"] == "Succeeded"
    polls = recorder.matching("GET", r"/operationstatuses/")
    assert polls and all(p.request_headers["Authorization"] == f"Bearer {longrun.project_token}" for p in polls)
    assert all(p.status == 200 for p in polls)


def test_failed_operation_raises_with_error_code(longrun, devcenter, native):
    client, recorder, _ = devcenter
    poller = client.begin_delete_dev_box(longrun.project, USER, box(), enforce_https=False)
    (initial,) = recorder.matching("DELETE", r"/devboxes/")
    op_id = op_id_from(initial.headers["Operation-Location"])
    native.patch(op_id, {"state": "Failed", "error": {"code": "DevBoxDeleteFailed", "message": "The disk is locked."}})
    with pytest.raises(HttpResponseError) as info:
        finish(poller)
    assert info.value.error is not None
    assert info.value.error.code == "DevBoxDeleteFailed"
    assert info.value.error.message == "The disk is locked."
    assert poller.status() == "Failed"


def test_canceled_operation_ends(longrun, devcenter, native):
    client, recorder, _ = devcenter
    poller = client.begin_delete_dev_box(longrun.project, USER, box(), enforce_https=False)
    (initial,) = recorder.matching("DELETE", r"/devboxes/")
    native.cancel(op_id_from(initial.headers["Operation-Location"]))
    # azure-core treats Canceled as a failure (base_polling.py _FAILED).
    with pytest.raises(HttpResponseError):
        finish(poller)
    assert poller.status() == "Canceled"


def test_sdk_default_api_version_is_accepted(longrun):
    client, recorder, _ = make_client(longrun)  # no api_version: the SDK's default
    with client:
        result = finish(client.begin_delete_dev_box(longrun.project, USER, box(), enforce_https=False))
    assert result["status"] == "Succeeded"
    (initial,) = recorder.matching("DELETE", r"/devboxes/")
    assert f"api-version={SDK_DEFAULT_API_VERSION}" in initial.query


def test_wrong_key_on_begin_raises_client_authentication_error(longrun):
    client, _, _ = make_client(longrun, key="not-a-valid-key", api_version=API_VERSION)
    with client, pytest.raises(ClientAuthenticationError) as info:
        client.begin_delete_dev_box(longrun.project, USER, box(), enforce_https=False)
    assert info.value.status_code == 401


# --- polling only: works on any build with the native API -------------------


def test_plain_http_needs_enforce_https_false(longrun, devcenter):
    """Documents azure-core, not longrun: without enforce_https=False the
    bearer policy refuses http:// before anything is sent."""
    client, recorder, _ = devcenter
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        client.send_request(HttpRequest("GET", f"/projects/{longrun.project}/operationstatuses/{uuid.uuid4()}",
                                        params={"api-version": API_VERSION}))
    assert recorder.exchanges == []


def test_send_request_returns_documented_body(longrun, devcenter, native):
    client, _, _ = devcenter
    created = native.create(f"projects/{longrun.project}", "deleteDevBox")
    op_id = op_id_from(created.headers["Operation-Location"])
    request = HttpRequest("GET", f"/projects/{longrun.project}/operationstatuses/{op_id}",
                          params={"api-version": API_VERSION})

    native.patch(op_id, {"state": "Running", "percentComplete": 40})
    response = client.send_request(request, enforce_https=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Retry-After"] == str(longrun.retry_after)
    assert response.headers.get("ETag")
    assert response.headers.get("x-ms-request-id")
    assert response.headers.get("x-ms-client-request-id") == response.request.headers["x-ms-client-request-id"]
    body = response.json()
    assert body["id"] == f"/projects/{longrun.project}/operationStatuses/{op_id}"
    assert body["name"] == op_id
    assert body["status"] == "Running"
    assert body["percentComplete"] == 40
    assert_rfc3339_utc(body["startTime"], "startTime")
    assert "properties" not in body and "endTime" not in body and "error" not in body

    native.patch(op_id, {"state": "Succeeded", "properties": {"deletedBy": "tests"}})
    body = client.send_request(request, enforce_https=False).json()
    assert body["status"] == "Succeeded"
    assert body["properties"] == {"deletedBy": "tests"}
    assert_rfc3339_utc(body["endTime"], "endTime")


def test_send_request_failed_and_canceled_bodies(longrun, devcenter, native):
    client, _, _ = devcenter

    def status_of(op_id):
        return client.send_request(
            HttpRequest("GET", f"/projects/{longrun.project}/operationstatuses/{op_id}",
                        params={"api-version": API_VERSION}),
            enforce_https=False,
        ).json()

    failed = op_id_from(native.create(f"projects/{longrun.project}", "deleteDevBox").headers["Operation-Location"])
    native.patch(failed, {"state": "Failed", "error": {"code": "DevBoxDeleteFailed", "message": "The disk is locked."}})
    body = status_of(failed)
    assert body["status"] == "Failed"
    assert body["error"]["code"] == "DevBoxDeleteFailed"
    assert body["error"]["message"] == "The disk is locked."

    canceled = op_id_from(native.create(f"projects/{longrun.project}", "deleteDevBox").headers["Operation-Location"])
    native.cancel(canceled)
    assert status_of(canceled)["status"] == "Canceled"  # never "Cancelled"


def test_sdk_default_api_version_reads_status(longrun, native):
    client, _, _ = make_client(longrun)
    op_id = op_id_from(native.create(f"projects/{longrun.project}", "deleteDevBox").headers["Operation-Location"])
    with client:
        response = client.send_request(
            HttpRequest("GET", f"/projects/{longrun.project}/operationstatuses/{op_id}",
                        params={"api-version": SDK_DEFAULT_API_VERSION}),
            enforce_https=False,
        )
    assert response.status_code == 200, response.text()
    assert response.json()["status"] == "NotStarted"


def test_wrong_key_is_401_with_challenge(longrun):
    client, _, _ = make_client(longrun, key="not-a-valid-key", api_version=API_VERSION)
    with client:
        response = client.send_request(
            HttpRequest("GET", f"/projects/{longrun.project}/operationstatuses/{uuid.uuid4()}",
                        params={"api-version": API_VERSION}),
            enforce_https=False,
        )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert response.json()["error"]["code"] == response.headers["x-ms-error-code"]
