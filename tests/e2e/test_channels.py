"""End-to-end tests of the scheduler's push channels (services/scheduler-worker/channels.c, docs/sync.md
"Channels") on real PostgreSQL, RabbitMQ and the Google stand-in: every connected user gets one live channel on
GOOGLE_WEBHOOK_URL, it is replaced before it expires and when the address changes, a refused address costs one
call, several schedulers still open one channel per user, and a disconnected user's channel is closed.

The address is a tiny HTTP receiver on loopback (test_google_standin.PushReceiver), where the stand-in delivers its pushes over plain http.
"""

import hashlib
import time

from harness import wait_for
from test_google_standin import PushReceiver

LIVE = "live"


def channels(s, user=None):
    """The table's channels (of one user), oldest first, as dicts."""
    cols = ("id", "user_id", "calendar_id", "address", "token_hash", "resource_id", "expiration", "status",
            "stop_reason", "failure_reason", "created_at", "opened_at", "stopped_at")
    rows = s.query("SELECT " + ", ".join(cols) + " FROM calendar_watch_channels"
                   " WHERE %s IS NULL OR user_id = %s::uuid ORDER BY created_at", user, user)
    return [dict(zip(cols, [str(v) if k in ("id", "user_id") else v for k, v in zip(cols, r)])) for r in rows]


def live(s, user=None):
    return [c for c in channels(s, user) if c["status"] == LIVE]


def standin_channels(s):
    """The stand-in's channels by id: {id: {address, token, state, resource_id, expiration, ...}}."""
    return {c["id"]: c for c in s.standin.admin("pushes")["channels"]}


def google_calls(s, endpoint):
    """How many times the stand-in answered endpoint (any status)."""
    return sum(s.standin.admin("stats")["endpoints"].get(endpoint, {}).values())


def connected_user(s, **kw):
    user = s.add_user()
    s.connect_calendar(user, f"g-{user[:8]}@example.com", **kw)
    return user


def scheduler(s, url, **env):
    """A scheduler with GOOGLE_WEBHOOK_URL = url (None: unset); renewal 20 s before expiry, so a pass every 5 s."""
    env.setdefault("WATCH_RENEW_BEFORE_SECONDS", "20")
    return s.service("scheduler-worker", GOOGLE_WEBHOOK_URL=url, **env)


def test_every_connected_user_gets_one_live_channel(stack):
    s = stack()
    s.start_standin()
    users = [connected_user(s), connected_user(s)]
    stranger = s.add_user()
    with PushReceiver() as hook:
        sched = scheduler(s, hook.url)
        for u in users:
            wait_for(lambda: live(s, u), 15, what=f"a live channel for {u}")
        time.sleep(6)  # a pass more: nothing new
        rows = channels(s)
        assert sorted(c["user_id"] for c in rows) == sorted(users), rows
        assert all(c["status"] == LIVE and c["address"] == hook.url and c["calendar_id"] == "primary" for c in rows)
        assert channels(s, stranger) == []
        assert google_calls(s, "events.watch") == 2

        google = standin_channels(s)
        for c in rows:
            g = google[c["id"]]
            assert g["state"] == "live" and g["address"] == hook.url
            assert hashlib.sha256(g["token"].encode()).digest() == bytes(c["token_hash"]), "token_hash is SHA-256"
            assert len(g["token"]) == 43, "32 random bytes, base64url without padding"
            assert g["resource_id"] == c["resource_id"]
            assert abs(int(g["expiration"]) / 1000 - c["expiration"].timestamp()) < 1
        assert google[rows[0]["id"]]["token"] != google[rows[1]["id"]]["token"]

        pushes = [headers for _, headers, _ in hook.wait(2, timeout=10)]
        assert sorted(p["x-goog-channel-id"] for p in pushes) == sorted(c["id"] for c in rows)
        assert all(p["x-goog-resource-state"] == "sync" for p in pushes)

        m = sched.metrics()
        assert m['scheduler_channels_total{action="opened"}'] == 2
        assert m["scheduler_channels_live"] == 2
        logs = sched.logs()
        assert all(g["token"] not in logs for g in google.values()), "a channel token in the log"
        assert all(c["id"] in logs for c in rows), "each opened channel is logged with its id"


def test_channel_is_renewed_before_it_expires(stack):
    s = stack()
    s.start_standin()
    user = connected_user(s)
    s.standin.admin("pushes", {"max_ttl_s": 20})  # Google grants 20 s; due for renewal after half of it
    with PushReceiver() as hook:
        sched = scheduler(s, hook.url, WATCH_TTL_SECONDS="60", WATCH_RENEW_BEFORE_SECONDS="12")
        first = wait_for(lambda: live(s, user), 15, what="the first channel")[0]
        old = wait_for(lambda: [c for c in channels(s, user) if c["id"] == first["id"] and c["status"] == "stopped"],
                       25, what="the first channel replaced")[0]
        assert old["stop_reason"] == "renewed"
        assert old["stopped_at"] < old["expiration"], "stopped before it expired"
        new = [c for c in channels(s, user) if c["created_at"] > first["created_at"]][0]
        assert new["opened_at"] <= old["stopped_at"], "the new channel was live before the old one was stopped"
        assert new["address"] == hook.url and new["token_hash"] != first["token_hash"]

        google = standin_channels(s)
        assert google[first["id"]]["state"] == "stopped", "stopped at Google, not left to expire"
        assert google[new["id"]]["state"] in ("live", "stopped")
        assert len(live(s, user)) == 1
        assert sched.metrics()['scheduler_channels_total{action="renewed"}'] >= 1
        assert not [c for c in channels(s, user) if c["stop_reason"] == "expired"]


def test_channels_move_to_a_new_address(stack):
    s = stack()
    s.start_standin()
    user = connected_user(s)
    with PushReceiver() as a, PushReceiver() as b:
        first = scheduler(s, a.url)
        old = wait_for(lambda: live(s, user), 15, what="a channel on the first address")[0]
        assert first.stop() == 0
        scheduler(s, b.url)
        new = wait_for(lambda: [c for c in live(s, user) if c["address"] == b.url], 15, what="the new address")[0]
        stopped = wait_for(lambda: [c for c in channels(s, user) if c["id"] == old["id"] and c["status"] == "stopped"],
                           10, what="the old channel stopped")[0]
        assert stopped["stop_reason"] == "address_changed"
        assert new["opened_at"] <= stopped["stopped_at"]
        google = standin_channels(s)
        assert google[old["id"]]["state"] == "stopped" and google[new["id"]]["state"] == "live"
        assert len(live(s, user)) == 1


def test_refused_address_fails_once(stack):
    s = stack()
    s.start_standin()
    user = connected_user(s)
    sched = scheduler(s, "http://example.com/hook")
    failed = wait_for(lambda: [c for c in channels(s, user) if c["status"] == "failed"], 15, what="a failed row")
    assert failed[0]["failure_reason"].startswith("WebHook callback must be HTTPS"), failed
    time.sleep(11)  # two more passes
    assert len(channels(s, user)) == 1
    assert google_calls(s, "events.watch") == 1, "a refused channel is not asked for again"
    assert sched.metrics()['scheduler_channels_total{action="failed"}'] == 1
    assert sched.logs().count(failed[0]["id"]) >= 1

    # Reconnecting is how an operator retries: one more attempt.
    s.query("UPDATE users SET google_connected_at = now() WHERE id = %s", user)
    wait_for(lambda: len(channels(s, user)) == 2, 15, what="a second attempt after the reconnect")
    time.sleep(6)
    assert google_calls(s, "events.watch") == 2


def test_transient_failure_is_retried_a_minute_later(stack):
    s = stack()
    s.start_standin()
    user = connected_user(s)
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/calendar/v3/calendars/primary/events/"
                                          "watch", "status": 503, "count": 1}]})
    with PushReceiver() as hook:
        scheduler(s, hook.url)
        failed = wait_for(lambda: [c for c in channels(s, user) if c["status"] == "failed"], 15, what="a failure")
        assert failed[0]["failure_reason"].startswith("transient: "), failed
        started = time.time()
        time.sleep(11)  # two passes: held, not retried at once
        assert google_calls(s, "events.watch") == 1
        wait_for(lambda: live(s, user), 70, interval=0.5, what="a live channel after the hold")
        assert 45 < time.time() - started < 75, "tried again after the minute's hold, not much later"
        assert google_calls(s, "events.watch") == 2


def test_two_schedulers_open_one_channel_per_user(stack):
    s = stack()
    s.start_standin()
    users = [connected_user(s, expires_in=60) for _ in range(4)]
    # Each scheduler refreshes the tokens first and the refresh takes 3 s: both passes overlap between their
    # claims and their INSERTs, where only the claim keeps them apart.
    s.standin.admin("faults", {"rules": [{"method": "POST", "path_prefix": "/token", "latency_ms": 3000, "count": 8}]})
    with PushReceiver() as hook:
        a = scheduler(s, hook.url, start=False)
        b = scheduler(s, hook.url, start=False)
        a.start(wait_ready=False)
        b.start(wait_ready=False)
        wait_for(a.ready, 30, what="scheduler a")
        wait_for(b.ready, 30, what="scheduler b")
        for u in users:
            wait_for(lambda: live(s, u), 20, what=f"a channel for {u}")
        time.sleep(11)  # both run two more passes
        rows = channels(s)
        assert sorted(c["user_id"] for c in rows) == sorted(users), rows
        assert all(c["status"] == LIVE for c in rows)
        assert google_calls(s, "events.watch") == 4
        assert sum(svc.metrics()['scheduler_channels_total{action="opened"}'] for svc in (a, b)) == 4


def test_disconnected_user_channel_is_stopped(stack):
    s = stack()
    s.start_standin()
    user, other = connected_user(s), connected_user(s)
    with PushReceiver() as hook:
        sched = scheduler(s, hook.url)
        gone = wait_for(lambda: live(s, user), 15, what="a channel")[0]
        wait_for(lambda: live(s, other), 15, what="the other user's channel")
        s.query("UPDATE users SET google_calendar_connected = FALSE, google_access_token = NULL,"
                " google_refresh_token = NULL, google_token_expiry = NULL, google_disconnected_at = now()"
                " WHERE id = %s", user)
        row = wait_for(lambda: [c for c in channels(s, user) if c["status"] == "stopped"], 10, what="stopped")[0]
        assert row["id"] == gone["id"] and row["stop_reason"] == "user_disconnected"
        assert google_calls(s, "channels.stop") == 0, "no Google call: the tokens are gone"
        assert len(live(s, other)) == 1, "other users keep theirs"
        time.sleep(6)
        assert live(s, user) == [] and len(channels(s, user)) == 1, "no new channel for a disconnected user"
        assert sched.metrics()['scheduler_channels_total{action="stopped"}'] == 1


def test_no_webhook_url_no_channels(stack):
    s = stack()
    s.start_standin()
    user = connected_user(s)
    left = s.add_user()
    # A channel of a user who disconnected while channels were on: closed even with the setting gone.
    s.query("INSERT INTO calendar_watch_channels (id, user_id, calendar_id, address, token_hash, resource_id,"
            " expiration, status, opened_at) VALUES (gen_random_uuid(), %s, 'primary', 'https://x.example/h',"
            " '\\x00', 'r', now() + interval '1 day', 'live', now())", left)
    scheduler(s, None)
    row = wait_for(lambda: [c for c in channels(s, left) if c["status"] == "stopped"], 15, what="stopped")[0]
    assert row["stop_reason"] == "user_disconnected"
    time.sleep(6)
    assert channels(s, user) == []
    assert google_calls(s, "events.watch") == 0
