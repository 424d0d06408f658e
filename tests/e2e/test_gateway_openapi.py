"""proto/openapi.yaml against a running oauth-gateway: every operation is
called, every answer's status must be documented for its operation, and every
JSON body must validate against the documented schema ($refs resolved,
OpenAPI 3.0's `nullable` read as JSON Schema's null type). Request bodies the
test sends are checked against the documented request schemas too, and the
document's paths must be exactly the gateway's routes.
"""

import os
import uuid

import jsonschema
import requests
import yaml

from harness import free_port
from test_gateway import Gateway, add_meeting, connected_user, consent
from test_webhook import HOOK, add_channel, goog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "proto", "openapi.yaml")) as f:
    SPEC = yaml.safe_load(f)

ROUTES = {
    ("/api/integrations/google/auth", "get"), ("/api/integrations/google/callback", "get"),
    ("/api/integrations/google/disconnect", "post"), ("/api/integrations/google/status", "get"),
    ("/api/calendar/meetings", "get"), ("/api/calendar/meetings", "post"),
    ("/api/calendar/meetings/{meetingId}", "get"), ("/api/calendar/meetings/{meetingId}", "delete"),
    ("/api/calendar/meetings/{meetingId}/reschedule", "put"),
    ("/api/calendar/meetings/lead/{leadAnalyticsId}", "get"), ("/api/calendar/availability", "get"),
    ("/webhooks/google/calendar", "post"),
    ("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get"),
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def as_json_schema(node):
    """OpenAPI 3.0 schema objects as plain JSON Schema: nullable becomes a null alternative."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


DOC = as_json_schema(SPEC)
RESOLVER = jsonschema.RefResolver.from_schema(DOC)


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = RESOLVER.resolve(node["$ref"])[1]
    return node


def validate(instance, schema):
    jsonschema.Draft7Validator(schema, resolver=RESOLVER,
                               format_checker=jsonschema.FormatChecker()).validate(instance)


class Contract:
    """Checks answers against the document and remembers which operations and statuses were seen."""

    def __init__(self):
        self.seen = set()

    def check(self, r, method, template):
        op = DOC["paths"][template][method]
        status = str(r.status_code)
        assert status in op["responses"], f"{method.upper()} {template} answered undocumented {status}: {r.text}"
        doc = resolve(op["responses"][status])
        content = doc.get("content", {})
        if "application/json" in content:
            assert r.headers["Content-Type"].startswith("application/json"), r.headers
            validate(r.json(), content["application/json"]["schema"])
        elif "text/plain" in content:
            assert r.headers["Content-Type"].startswith("text/plain"), r.headers
        else:
            assert not r.content, f"{method.upper()} {template} {status} has an undocumented body"
        for header in doc.get("headers", {}):
            if header != "WWW-Authenticate" or status == "401":
                assert header in r.headers, f"{header} missing from {method.upper()} {template} {status}"
        self.seen.add((template, method, status))
        return r

    def request_body(self, method, template, body):
        schema = resolve(DOC["paths"][template][method]["requestBody"])["content"]["application/json"]["schema"]
        validate(body, schema)
        return body


def test_document_names_exactly_the_gateways_routes():
    assert SPEC["openapi"].startswith("3.0.")
    documented = {(p, m) for p, item in SPEC["paths"].items() for m in item if m in METHODS}
    assert documented == ROUTES
    # Every $ref resolves.
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                assert resolve(node) is not None, node["$ref"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(DOC)
    # The schema of a meeting names what calendar_meeting_json() returns.
    assert "meeting_start_time" in DOC["components"]["schemas"]["Meeting"]["properties"]


def test_responses_match_the_document(stack):
    s = stack()
    s.start_standin(auto_approve=True, email="contract@example.com")
    gw = Gateway(s)
    sched = s.service("scheduler-worker", SCHEDULE_DELAY_MS="0")
    c = Contract()
    M = "/api/calendar/meetings"
    MID = M + "/{meetingId}"
    user = s.add_user()

    def call(method, template, path=None, auth=True, **kw):
        return c.check(gw.call(method.upper(), path or template, user if auth else None, **kw), method, template)

    for probe in ("/healthz", "/readyz"):
        call("get", probe, auth=False)
    # /metrics is on METRICS_ADDR, the path's own server in the document; the API's listener answers 404.
    assert SPEC["paths"]["/metrics"]["servers"][0]["description"].startswith("METRICS_ADDR")
    c.check(requests.get(gw.svc.metrics_url + "/metrics", timeout=5), "get", "/metrics")
    assert gw.get("/metrics").status_code == 404

    # Connect.
    auth = "/api/integrations/google/auth"
    call("get", auth, auth=False)
    call("get", auth)
    url = call("get", auth, headers={"Accept": "application/json"}, session=gw.browser).json()["authUrl"]
    callback = consent(s, url, "contract@example.com")
    r = gw.finish(callback)
    c.check(r, "get", "/api/integrations/google/callback")
    assert r.headers["Location"].endswith("google=connected")
    call("get", "/api/integrations/google/callback", path="/api/integrations/google/callback?state=forged",
         auth=False)
    status = "/api/integrations/google/status"
    assert call("get", status).json() == {"connected": True, "email": "contract@example.com"}
    call("get", status, auth=False)

    # Reads.
    call("get", M)
    call("get", M, path=M + "?limit=0")
    call("get", M, auth=False)

    # Writes through the scheduler.
    lead = s.add_lead(user)["lead"]
    body = c.request_body("post", M, {"leadAnalyticsId": lead, "attendeeName": "Contract Lead",
                                      "dateTime": "2099-05-05T10:00:00Z"})
    meeting = call("post", M, json=body).json()["meeting"]
    call("post", M, json=body)
    call("post", M, json={"leadAnalyticsId": "x"})
    call("post", M, json={"leadAnalyticsId": str(uuid.uuid4())})
    call("post", M, data="x" * 70000)
    call("post", M, auth=False, json=body)

    mid = meeting["id"]
    call("get", MID, path=f"{M}/{mid}")
    call("get", MID, path=f"{M}/{uuid.uuid4()}")
    call("get", MID, path=f"{M}/abc")
    call("get", MID, path=f"{M}/{mid}", auth=False)

    resched = MID + "/reschedule"
    body = c.request_body("put", resched, {"newDateTime": "2099-05-06T10:00:00Z"})
    moved = call("put", resched, path=f"{M}/{mid}/reschedule", json=body).json()
    assert moved["previous"]["id"] == mid
    call("put", resched, path=f"{M}/{mid}/reschedule", json=body)
    call("put", resched, path=f"{M}/{moved['meeting']['id']}/reschedule", json={"newDateTime": "soon"})
    call("put", resched, path=f"{M}/{uuid.uuid4()}/reschedule", json=body)
    call("put", resched, path=f"{M}/{mid}/reschedule", data="y" * 70000)
    call("put", resched, path=f"{M}/{mid}/reschedule", auth=False, json=body)

    new_id = moved["meeting"]["id"]
    body = c.request_body("delete", MID, {"reason": "contract test"})
    call("delete", MID, path=f"{M}/{new_id}", json=body)
    call("delete", MID, path=f"{M}/{new_id}", json=body)
    call("delete", MID, path=f"{M}/{uuid.uuid4()}", json=body)
    call("delete", MID, path=f"{M}/{new_id}", json={"reason": 1})
    call("delete", MID, path=f"{M}/{new_id}", data="z" * 70000)
    call("delete", MID, path=f"{M}/{new_id}", auth=False)

    # The rep's calendar: a busy slot refused with its spans, and availability.
    s.standin.admin("events", {"email": "contract@example.com", "event": {
        "summary": "Busy", "start": {"dateTime": "2099-05-07T10:00:00Z"}, "end": {"dateTime": "2099-05-07T11:00:00Z"}}})
    busy = call("post", M, json={"leadAnalyticsId": s.add_lead(user)["lead"], "dateTime": "2099-05-07T10:00:00Z"})
    assert busy.status_code == 409 and busy.json()["busy"], busy.text
    avail = "/api/calendar/availability"
    q = "?from=2099-05-07T09:00:00Z&to=2099-05-07T12:00:00Z"
    assert call("get", avail, path=avail + q + "&duration_minutes=60").json()["free"]
    call("get", avail, path=avail + "?from=2099-05-07T09:00:00Z")
    call("get", avail, path=avail + q, auth=False)

    by_lead = M + "/lead/{leadAnalyticsId}"
    assert len(call("get", by_lead, path=f"{M}/lead/{lead}").json()["meetings"]) == 2
    call("get", by_lead, path=f"{M}/lead/{uuid.uuid4()}")
    call("get", by_lead, path=f"{M}/lead/nope")
    call("get", by_lead, path=f"{M}/lead/{lead}", auth=False)
    s.query("INSERT INTO calendar_booking_outcomes (lead_analytics_id, user_id, outcome, reason, detail)"
            " VALUES (%s, %s, 'skipped', 'no_email', 'no address')", skipped := s.add_lead(user)["lead"], user)
    assert call("get", by_lead, path=f"{M}/lead/{skipped}").json()["outcome"]["reason"] == "no_email"

    # Google's pushes: no JWT, the channel's token instead.
    channel, token = add_channel(s, user)
    stopped, stopped_token = add_channel(s, user, status="stopped")
    assert call("post", HOOK, auth=False, headers=goog(channel, token, state="sync", number=1)).json() == \
        {"result": "sync"}
    assert call("post", HOOK, auth=False, headers=goog(channel, token)).json() == {"result": "accepted"}
    call("post", HOOK, auth=False)
    call("post", HOOK, auth=False, headers=goog(channel, "wrong"))
    call("post", HOOK, auth=False, headers=goog(stopped, stopped_token))
    call("post", HOOK, auth=False, headers=goog(channel, token), data="{}")
    c.check(gw.call("PUT", HOOK), "post", HOOK)

    # Without a scheduler the answer is pending.
    assert sched.stop() == 0
    call("post", M, json={"leadAnalyticsId": s.add_lead(user)["lead"]})
    add_meeting(s, user, hours=-5, status="completed")
    assert call("get", M, path=M + "?status=all&include_past=true&limit=100").json()["meetings"]

    disconnect = "/api/integrations/google/disconnect"
    call("post", disconnect)
    call("post", disconnect, auth=False)

    expected = {
        (auth, "get", "200"), (auth, "get", "302"), (auth, "get", "401"),
        ("/api/integrations/google/callback", "get", "302"),
        (status, "get", "200"), (status, "get", "401"),
        (disconnect, "post", "200"), (disconnect, "post", "401"),
        (M, "get", "200"), (M, "get", "400"), (M, "get", "401"),
        (M, "post", "201"), (M, "post", "202"), (M, "post", "400"), (M, "post", "401"), (M, "post", "404"),
        (M, "post", "409"), (M, "post", "413"),
        ("/api/calendar/availability", "get", "200"), ("/api/calendar/availability", "get", "400"),
        ("/api/calendar/availability", "get", "401"),
        (MID, "get", "200"), (MID, "get", "400"), (MID, "get", "401"), (MID, "get", "404"),
        (MID, "delete", "200"), (MID, "delete", "400"), (MID, "delete", "401"), (MID, "delete", "404"),
        (MID, "delete", "409"), (MID, "delete", "413"),
        (resched, "put", "200"), (resched, "put", "400"), (resched, "put", "401"), (resched, "put", "404"),
        (resched, "put", "409"), (resched, "put", "413"),
        (by_lead, "get", "200"), (by_lead, "get", "400"), (by_lead, "get", "401"), (by_lead, "get", "404"),
        (HOOK, "post", "200"), (HOOK, "post", "400"), (HOOK, "post", "403"), (HOOK, "post", "404"),
        (HOOK, "post", "405"), (HOOK, "post", "413"),
        ("/healthz", "get", "200"), ("/readyz", "get", "200"), ("/metrics", "get", "200"),
    }
    assert expected <= c.seen, sorted(expected - c.seen)
    assert {(t, m) for t, m, _ in c.seen} == ROUTES


def test_a_meeting_shows_the_leads_answer_and_who_changed_it(stack):
    """attendee_response_status and change_source (migration 039, docs/sync.md) as the sync writes them, read
    through the API: each row's own values, every documented answer, and nothing the document does not name."""
    s = stack()
    gw = Gateway(s)
    c = Contract()
    M = "/api/calendar/meetings"
    MID = M + "/{meetingId}"
    user, _ = connected_user(s)
    lead = s.add_lead(user)["lead"]
    # The rep moved the demo in Google Calendar: the old row ended and the new one made by that change.
    moved = add_meeting(s, user, lead, status="rescheduled")
    now = add_meeting(s, user, lead)
    s.query("UPDATE calendar_meetings SET change_source = 'google' WHERE id IN (%s, %s)", moved, now)
    s.query("UPDATE calendar_meetings SET rescheduled_from_meeting_id = %s, attendee_response_status = 'declined'"
            " WHERE id = %s", moved, now)
    deleted = add_meeting(s, user, status="cancelled")
    s.query("UPDATE calendar_meetings SET change_source = 'google', cancellation_reason = 'Deleted in Google Calendar',"
            " attendee_response_status = 'tentative' WHERE id = %s", deleted)
    fresh = add_meeting(s, user, hours=48)

    def meeting(mid):
        r = c.check(gw.get(f"{M}/{mid}", user), "get", MID)
        assert r.status_code == 200, r.text
        return r.json()["meeting"]

    m = meeting(now)
    assert (m["attendee_response_status"], m["change_source"], m["rescheduled_from_meeting_id"]) \
        == ("declined", "google", moved)
    assert (meeting(moved)["status"], meeting(moved)["change_source"]) == ("rescheduled", "google")
    m = meeting(deleted)
    assert (m["status"], m["change_source"], m["attendee_response_status"]) == ("cancelled", "google", "tentative")
    m = meeting(fresh)
    assert (m["attendee_response_status"], m["change_source"]) == (None, "platform"), "before any sync"
    for answer in ("needsAction", "accepted"):
        s.query("UPDATE calendar_meetings SET attendee_response_status = %s WHERE id = %s", answer, fresh)
        assert meeting(fresh)["attendee_response_status"] == answer
    by_lead = c.check(gw.get(f"{M}/lead/{lead}", user), "get", M + "/lead/{leadAnalyticsId}").json()["meetings"]
    assert {x["id"]: x["change_source"] for x in by_lead} == {moved: "google", now: "google"}
    listed = c.check(gw.get(M + "?status=all&limit=100", user), "get", M).json()["meetings"]
    assert {x["id"]: x["attendee_response_status"] for x in listed} == \
        {now: "declined", deleted: "tentative", fresh: "accepted", moved: None}
    # The document names exactly the answers and sources the database allows.
    schema = SPEC["components"]["schemas"]["Meeting"]["properties"]
    assert set(schema["attendee_response_status"]["enum"]) - {None} == {"needsAction", "accepted", "declined",
                                                                         "tentative"}
    assert set(schema["change_source"]["enum"]) == {"platform", "google"}
    assert "change_source" in SPEC["components"]["schemas"]["Meeting"]["required"]


def test_unavailable_answers_match_the_document(stack):
    s = stack()
    gw = Gateway(s, wait_ready=False, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/x")
    c = Contract()
    c.check(requests.get(gw.url + "/readyz", timeout=5), "get", "/readyz")
    user, _ = connected_user(s)
    r = gw.call("POST", "/api/calendar/meetings", user, json={"leadAnalyticsId": s.add_lead(user)["lead"]})
    assert r.status_code == 503
    c.check(r, "post", "/api/calendar/meetings")
    channel, token = add_channel(s, user)
    r = requests.post(gw.url + HOOK, headers=goog(channel, token), timeout=10)
    assert r.status_code == 503
    c.check(r, "post", HOOK)
    assert ("/readyz", "get", "503") in c.seen

