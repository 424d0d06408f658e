"""End-to-end tests of the gateway's side of two-way sync (docs/sync.md) on the
run's real PostgreSQL and RabbitMQ and the Google stand-in: Google's pushes to
POST /webhooks/google/calendar (accepted only for an open channel of ours with
its token and resource, published as calendar.changed into scheduler.sync,
everything else refused, counted and published nowhere), a real push from the
stand-in's channel through the gateway, the channels a disconnect stops at
Google before the grant is revoked, and the calendar.connected news of a
connect.

Channel rows are written straight into calendar_watch_channels, as the
scheduler would (only the token's SHA-256 is stored). A scheduler runs once
and stops before each test's pushes, so that scheduler.sync exists on the
vhost (the gateway's broker user may only declare the exchange) and what the
gateway publishes stays there to be looked at.
"""

import hashlib
import json
import secrets
import time
import uuid

import requests

import logscan
from harness import unseal, wait_for
from test_gateway import Gateway, assert_error, connect, connected_user, database_refused, scheduler_down

HOOK = "/webhooks/google/calendar"
RESOURCE = "events-resource-1"
RESULTS = ("accepted", "sync", "missing_headers", "unknown_channel", "stopped_channel", "bad_token", "bad_resource",
           "unavailable", "has_body")


def add_channel(s, user, status="live", resource=RESOURCE, token=None, channel=None):
    """A channel row as the scheduler keeps it; returns (channel id, token)."""
    channel = channel or str(uuid.uuid4())
    token = token or secrets.token_urlsafe(32)
    s.query("INSERT INTO calendar_watch_channels (id, user_id, calendar_id, address, token_hash, resource_id,"
            " expiration, status, opened_at) VALUES (%s, %s, 'primary', 'https://gcal.example.com" + HOOK + "',"
            " %s, %s, now() + interval '7 days', %s, CASE WHEN %s = 'live' THEN now() END)",
            channel, user, hashlib.sha256(token.encode()).digest(), resource, status, status)
    return channel, token


def goog(channel, token, resource=RESOURCE, state="exists", number=2):
    """The headers of a push as Google (and tests/google-standin/watch.c) sends them."""
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
        "X-Goog-Resource-ID": resource,
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    }


def push(gw, headers, **kw):
    return requests.post(gw.url + HOOK, headers=headers, timeout=10, **kw)


def counts(gw):
    m = gw.svc.metrics()
    return {r: m.get(f'gateway_webhook_notifications_total{{result="{r}"}}', 0) for r in RESULTS}


def sync_queue(s):
    return s.peek("scheduler.sync")


def gateway_with_queue(s):
    """A scheduler ran once (scheduler.sync exists, nothing consumes it) and a gateway."""
    scheduler_down(s)
    return Gateway(s)


def test_a_push_for_a_live_channel_is_published_once(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user = s.add_user()
    channel, token = add_channel(s, user)

    r = push(gw, goog(channel, token, number=7))
    assert r.status_code == 200, r.text
    msgs = wait_for(lambda: sync_queue(s), 5, what="calendar.changed in scheduler.sync")
    time.sleep(0.3)
    msgs = sync_queue(s)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["routing_key"] == "calendar.changed" and m["exchange"] == "calendar"
    assert json.loads(m["payload"]) == {
        "user_id": user, "channel_id": channel, "message_number": 7}
    props = m["properties"]
    assert props["message_id"] == f"{channel}:7" and props["type"] == "calendar.changed"
    assert props["delivery_mode"] == 2 and props["user_id"] == "gcal-gateway"
    assert counts(gw)["accepted"] == 1
    # The channel id is matched whatever its case; the message names it as stored.
    r = push(gw, goog(channel.upper(), token, number=8))
    assert r.status_code == 200, r.text
    wait_for(lambda: len(sync_queue(s)) == 2, 5, what="the second message")
    assert sorted(m["properties"]["message_id"] for m in sync_queue(s)) == [f"{channel}:7", f"{channel}:8"]


def test_sync_messages_are_acknowledged_and_an_opening_channel_needs_only_its_token(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user = s.add_user()
    live, live_token = add_channel(s, user)
    # Google's answer to events.watch (with the resource id) is not stored yet when its first push comes.
    opening, opening_token = add_channel(s, user, status="opening", resource=None)

    for channel, token in ((live, live_token), (opening, opening_token)):
        r = push(gw, goog(channel, token, state="sync", number=1))
        assert r.status_code == 200, r.text
    time.sleep(0.5)
    assert sync_queue(s) == [], "a sync message asks for nothing"
    assert counts(gw)["sync"] == 2

    r = push(gw, goog(opening, opening_token, resource="whatever-google-said", number=2))
    assert r.status_code == 200, r.text
    msgs = wait_for(lambda: sync_queue(s), 5, what="the opening channel's change")
    assert msgs[0]["properties"]["message_id"] == f"{opening}:2"
    # Once the scheduler stored the resource id it is checked again.
    s.query("UPDATE calendar_watch_channels SET resource_id = 'res-stored' WHERE id = %s", opening)
    assert_error(push(gw, goog(opening, opening_token, resource="whatever-google-said", number=3)), 403, "forbidden")


def test_refusals_publish_nothing_are_counted_and_never_log_the_token(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user = s.add_user()
    live, token = add_channel(s, user)
    stopped, stopped_token = add_channel(s, user, status="stopped")
    failed, failed_token = add_channel(s, user, status="failed", resource=None)
    # Live without a resource id: only an opening channel goes without the resource check.
    bare, bare_token = add_channel(s, user, resource=None)
    before = counts(gw)

    cases = [
        (push(gw, goog(str(uuid.uuid4()), token)), 404, "unknown_channel"),
        (push(gw, goog(stopped, stopped_token)), 404, "stopped_channel"),
        (push(gw, goog(failed, failed_token)), 404, "stopped_channel"),
        (push(gw, goog(live, "not-" + token)), 403, "bad_token"),
        (push(gw, goog(live, token, resource="someone-elses-calendar")), 403, "bad_resource"),
        (push(gw, goog(bare, bare_token)), 403, "bad_resource"),
        (push(gw, {}), 400, "missing_headers"),
        (push(gw, {k: v for k, v in goog(live, token).items() if k != "X-Goog-Channel-Token"}), 400,
         "missing_headers"),
        (push(gw, {k: v for k, v in goog(live, token).items() if k != "X-Goog-Resource-ID"}), 400,
         "missing_headers"),
        (push(gw, goog("chan-1", token)), 400, "missing_headers"),
        (push(gw, goog(live, token, state="deleted")), 400, "missing_headers"),
        (push(gw, goog(live, token, number=0)), 400, "missing_headers"),
        (push(gw, goog(live, token, number="12x")), 400, "missing_headers"),
        (push(gw, goog(live, token), data=b'{"kind": "api#channel"}'), 413, "has_body"),
    ]
    for r, status, _ in cases:
        assert 400 <= r.status_code < 500 and r.status_code == status, (r.status_code, r.text)
        assert_error(r, status)
    # A body is never read: the connection closes after the answer.
    assert cases[-1][0].headers.get("Connection") == "close"
    after = counts(gw)
    want = {}
    for _, _, result in cases:
        want[result] = want.get(result, 0) + 1
    assert {k: after[k] - before[k] for k in RESULTS if after[k] != before[k]} == want
    time.sleep(0.5)
    assert sync_queue(s) == [], "nothing was published"
    # Not a browser's endpoint, nor anything but a POST.
    r = requests.get(gw.url + HOOK, timeout=10)
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"

    logs = gw.svc.logs()
    refused = [line for line in gw.svc.log_lines() if line.get("msg") == "push refused"]
    assert {line["reason"] for line in refused} == set(want)
    assert any(line.get("channel") == live and line["reason"] == "bad_token" for line in refused)
    secrets_ = [("channel token", t) for t in (token, stopped_token, failed_token, bare_token)]
    assert logscan.scan("oauth-gateway", logs, secrets_) == []
    assert "not-" + token not in logs


def test_database_down_answers_503_so_google_retries(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user = s.add_user()
    channel, token = add_channel(s, user)

    with database_refused(s):
        wait_for(lambda: requests.get(gw.url + "/readyz", timeout=1).status_code == 503, 5, what="not ready")
        start = time.time()
        r = push(gw, goog(channel, token))
        assert time.time() - start < 0.5, "answered at once"
        assert_error(r, 503, "unavailable")
        assert r.headers.get("Retry-After") == "1"
    assert counts(gw)["unavailable"] == 1
    assert sync_queue(s) == []

    wait_for(lambda: requests.get(gw.url + "/readyz", timeout=1).status_code == 200, 40, what="ready again")
    assert push(gw, goog(channel, token, number=3)).status_code == 200
    wait_for(lambda: len(sync_queue(s)) == 1, 5, what="the push Google sent again")


def test_a_push_no_queue_takes_answers_503(stack):
    s = stack()
    gw = Gateway(s)  # no scheduler ever ran here: nothing is bound to the calendar exchange
    user = s.add_user()
    channel, token = add_channel(s, user)
    assert_error(push(gw, goog(channel, token)), 503, "unavailable")
    assert counts(gw)["unavailable"] == 1


def test_a_real_push_from_a_channel_at_google(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user, email = connected_user(s)
    access = unseal(s.one("SELECT google_access_token FROM users WHERE id = %s", user)[0], user)
    channel, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
    # Written before events.watch is called, as the scheduler does.
    add_channel(s, user, status="opening", resource=None, token=token, channel=channel)

    r = requests.post(f"{s.standin.url}/calendar/v3/calendars/primary/events/watch", timeout=10,
                      headers={"Authorization": "Bearer " + access},
                      json={"id": channel, "type": "web_hook", "address": gw.url + HOOK, "token": token,
                            "params": {"ttl": "3600"}})
    assert r.status_code == 200, r.text
    resource = r.json()["resourceId"]
    s.query("UPDATE calendar_watch_channels SET status = 'live', resource_id = %s, opened_at = now()"
            " WHERE id = %s", resource, channel)

    def pushes(state):
        return [p for p in s.standin.admin("pushes")["pushes"] if p["channel_id"] == channel and p["state"] == state
                and p["result"] != "pending"]

    sync = wait_for(lambda: pushes("sync"), 10, what="the channel's sync message")
    assert (sync[0]["result"], sync[0]["status"]) == ("delivered", 200), sync
    assert sync_queue(s) == []

    # The rep adds an event in Google Calendar.
    s.standin.admin("events", {"email": email, "event": {
        "summary": "Lunch", "start": {"dateTime": "2099-03-01T12:00:00Z"}, "end": {"dateTime": "2099-03-01T13:00:00Z"}}})
    exists = wait_for(lambda: pushes("exists"), 10, what="the change's push")
    assert (exists[0]["result"], exists[0]["status"]) == ("delivered", 200), exists
    msgs = wait_for(lambda: sync_queue(s), 5, what="calendar.changed")
    body = json.loads(msgs[0]["payload"])
    assert body == {"user_id": user, "channel_id": channel, "message_number": exists[0]["message_number"]}
    assert counts(gw)["accepted"] == 1 and counts(gw)["sync"] == 1


def open_channel(s, gw, user, access):
    """A live channel at the stand-in pointing at gw's hook, with its row; returns its id."""
    channel, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
    r = requests.post(f"{s.standin.url}/calendar/v3/calendars/primary/events/watch", timeout=10,
                      headers={"Authorization": "Bearer " + access},
                      json={"id": channel, "type": "web_hook", "address": gw.url + HOOK, "token": token})
    assert r.status_code == 200, r.text
    add_channel(s, user, resource=r.json()["resourceId"], token=token, channel=channel)
    return channel, token, r.json()["resourceId"]


def standin_channel(s, channel):
    return next(c for c in s.standin.admin("pushes")["channels"] if c["id"] == channel)


def channel_rows(s, user):
    return s.query("SELECT id::text, status, stop_reason, stopped_at IS NOT NULL FROM calendar_watch_channels"
                   " WHERE user_id = %s ORDER BY id", user)


def test_disconnect_stops_the_channels_at_google_before_the_revoke(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user = s.add_user()
    assert connect(gw, user, "leaving@example.com")[0] == {"google": "connected"}
    access = unseal(s.one("SELECT google_access_token FROM users WHERE id = %s", user)[0], user)
    channel, token, resource = open_channel(s, gw, user, access)
    # One whose watch never answered: nothing to stop at Google, but closed here all the same.
    opening, _ = add_channel(s, user, status="opening", resource=None)
    old, _ = add_channel(s, user, status="stopped")
    s.query("UPDATE calendar_watch_channels SET stop_reason = 'renewed' WHERE id = %s", old)
    assert standin_channel(s, channel)["state"] == "live"

    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    assert r.status_code == 200 and r.json()["revoked"] is True, r.text
    rows = {row[0]: row[1:] for row in channel_rows(s, user)}
    assert rows[channel] == ("stopped", "user_disconnected", True)
    assert rows[opening] == ("stopped", "user_disconnected", True)
    assert rows[old][:2] == ("stopped", "renewed"), "a channel stopped before keeps its reason"
    assert standin_channel(s, channel)["state"] == "stopped"
    paths = [q["path"] for q in s.standin.admin("requests")["requests"]]
    assert "/calendar/v3/channels/stop" in paths and "/revoke" in paths
    assert paths.index("/calendar/v3/channels/stop") < paths.index("/revoke"), "stopped while the grant still worked"
    # A push for it afterwards (Google's last, or someone replaying one) is refused.
    assert_error(push(gw, goog(channel, token, resource=resource, number=9)), 404, "not_found")
    assert [m["routing_key"] for m in sync_queue(s)] == ["calendar.connected"], "the connect's only"


def test_disconnect_with_an_expired_access_token_refreshes_to_stop_the_channels(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user, _ = connected_user(s)
    access = unseal(s.one("SELECT google_access_token FROM users WHERE id = %s", user)[0], user)
    channel, _, _ = open_channel(s, gw, user, access)
    s.query("UPDATE users SET google_token_expiry = now() - interval '1 minute' WHERE id = %s", user)
    s.standin.admin("expire-tokens", {})

    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    assert r.status_code == 200 and r.json()["revoked"] is True, r.text
    assert standin_channel(s, channel)["state"] == "stopped"
    stops = [q for q in s.standin.admin("requests")["requests"] if q["path"] == "/calendar/v3/channels/stop"]
    assert [q["status"] for q in stops] == [204], stops
    assert [row[1:] for row in channel_rows(s, user)] == [("stopped", "user_disconnected", True)]


def test_disconnect_does_not_wait_long_for_channel_stops(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user, _ = connected_user(s)
    access = unseal(s.one("SELECT google_access_token FROM users WHERE id = %s", user)[0], user)
    channel, _, _ = open_channel(s, gw, user, access)
    s.standin.admin("faults", {"rules": [{"path_prefix": "/calendar/v3/channels/stop", "latency_ms": 20000}]})

    start = time.time()
    r = gw.call("POST", "/api/integrations/google/disconnect", user)
    took = time.time() - start
    assert r.status_code == 200 and took < 6, (took, r.text)
    assert r.json()["revoked"] is True, "the revoke still had its time"
    assert s.one("SELECT google_calendar_connected, google_refresh_token FROM users WHERE id = %s", user) == \
        (False, None)
    assert [row[1] for row in channel_rows(s, user)] == ["stopped"]


def test_connect_asks_the_scheduler_to_open_a_channel(stack):
    s = stack()
    gw = gateway_with_queue(s)
    user = s.add_user()
    assert connect(gw, user, "hello@example.com")[0] == {"google": "connected"}
    msgs = wait_for(lambda: sync_queue(s), 5, what="calendar.connected")
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["routing_key"] == "calendar.connected" and m["exchange"] == "calendar"
    assert json.loads(m["payload"]) == {"user_id": user}
    assert m["properties"]["type"] == "calendar.connected" and m["properties"]["delivery_mode"] == 2
    assert m["properties"]["user_id"] == "gcal-gateway" and m["properties"]["message_id"]
