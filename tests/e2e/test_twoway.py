"""Two-way sync through every part at once (docs/sync.md): a user connects through the gateway's OAuth flow, the
scheduler opens a push channel to the gateway's webhook, and what the rep and the lead then do in the Google
stand-in's UI travels as a real push (stand-in -> POST /webhooks/google/calendar -> calendar.changed -> the
scheduler's sync) into the rows, the API and the owner's mail within seconds. The parts are tested one by one in
test_channels.py, test_webhook.py and test_sync.py."""

import hashlib
import time
import uuid

from harness import next_demo_time, wait_for
from test_gateway import Gateway, connect
from test_mailer import raw_mails

M = "/api/calendar/meetings"
HOOK = "/webhooks/google/calendar"
# A change must arrive well within this; the poll is set far beyond it, so only a push can carry it in time.
WITHIN_S = 15


class Platform:
    def __init__(self, s, **scheduler_env):
        self.s = s
        s.start_standin()
        self.gw = Gateway(s)
        env = dict({"SCHEDULE_DELAY_MS": "0", "GOOGLE_WEBHOOK_URL": self.gw.url + HOOK,
                    "SYNC_POLL_SECONDS": "3600"}, **scheduler_env)
        self.scheduler = s.service("scheduler-worker", **env)
        s.service("mailer-worker")
        self.owner = f"owner+{uuid.uuid4().hex[:8]}@example.com"
        self.user = s.add_user(email=self.owner)
        self.gmail = f"rep-{self.user[:8]}@example.com"
        assert connect(self.gw, self.user, self.gmail)[0] == {"google": "connected"}

    def channel(self):
        """The user's live channel: (id, address, token_hash, resource_id)."""
        return wait_for(lambda: self.s.one("SELECT id::text, address, token_hash, resource_id FROM"
                                           " calendar_watch_channels WHERE user_id = %s AND status = 'live'",
                                           self.user), 20, what="a live channel")

    def synced(self):
        wait_for(lambda: self.s.one("SELECT google_synced_at IS NOT NULL AND google_sync_claimed_until IS NULL"
                                    " FROM users WHERE id = %s", self.user)[0], 30, what="the first sync")

    def caught_up(self):
        """Until every sync asked for so far has run."""
        wait_for(lambda: self.s.one("SELECT google_synced_at >= google_sync_requested_at AND"
                                    " google_sync_claimed_until IS NULL FROM users WHERE id = %s", self.user)[0],
                 30, what="the syncs asked for")

    def book(self):
        lead = self.s.add_lead(self.user)["lead"]
        r = self.gw.call("POST", M, self.user, json={"leadAnalyticsId": lead, "dateTime": next_demo_time()})
        assert r.status_code == 201, r.text
        return lead, r.json()["meeting"]

    def meetings(self, lead):
        r = self.gw.get(f"{M}/lead/{lead}", self.user)
        assert r.status_code == 200, r.text
        return sorted(r.json()["meetings"], key=lambda m: m["created_at"])

    def mails(self, action):
        return [m for _, m in raw_mails(self.s, self.owner) if m["X-Meeting-Action"] == action]

    def admin(self, what, **body):
        return self.s.standin.admin(what, dict({"email": self.gmail}, **body))

    def pushes(self, channel_id):
        return [p for p in self.s.standin.admin("pushes")["pushes"] if p["channel_id"] == channel_id]


def test_a_move_a_delete_and_a_decline_in_google_reach_rows_api_and_mail_through_pushes(stack):
    p = Platform(stack())
    channel_id, address, token_hash, resource_id = p.channel()
    assert address == p.gw.url + HOOK
    at_standin = next(c for c in p.s.standin.admin("pushes")["channels"] if c["id"] == channel_id)
    assert at_standin["state"] == "live" and at_standin["address"] == address
    assert at_standin["resource_id"] == resource_id
    assert hashlib.sha256(at_standin["token"].encode()).digest() == bytes(token_hash), "a secret token, hashed"
    assert len(at_standin["token"]) >= 43
    p.synced()

    (moved_lead, moved), (deleted_lead, deleted), (declined_lead, declined) = p.book(), p.book(), p.book()
    wait_for(lambda: len(p.mails("created")) == 3, 20, what="the three created mails")

    t0 = time.time()
    p.admin("events/move", id=moved["google_event_id"], shift_s=86400)
    p.admin("events/delete", id=deleted["google_event_id"])
    p.admin("events/respond", id=declined["google_event_id"], attendee="lead@example.com", response="declined")

    now = wait_for(lambda: (lambda ms: ms if len(ms) == 2 else None)(p.meetings(moved_lead)), WITHIN_S,
                   what="the move in the API")
    assert now[0]["status"] == "rescheduled" and now[0]["change_source"] == "google"
    assert now[1]["status"] == "scheduled" and now[1]["change_source"] == "google"
    assert now[1]["rescheduled_from_meeting_id"] == moved["id"]
    gone = wait_for(lambda: (lambda ms: ms if ms[0]["status"] == "cancelled" else None)(p.meetings(deleted_lead)),
                    WITHIN_S, what="the delete in the API")
    assert gone[0]["change_source"] == "google" and gone[0]["cancellation_reason"] == "Deleted in Google Calendar"
    answer = wait_for(lambda: (lambda ms: ms if ms[0]["attendee_response_status"] == "declined" else None)(
        p.meetings(declined_lead)), WITHIN_S, what="the decline in the API")
    assert answer[0]["status"] == "scheduled", "a decline cancels nothing"

    for action, meeting_id in (("rescheduled", now[1]["id"]), ("cancelled", deleted["id"]),
                               ("declined", declined["id"])):
        mail = wait_for(lambda: p.mails(action), WITHIN_S, what=f"the {action} mail")
        assert len(mail) == 1 and mail[0]["X-Meeting-Id"] == meeting_id, (action, mail)
    assert time.time() - t0 < 2 * WITHIN_S

    # They came as pushes, answered 200 by the gateway; the poll is an hour away.
    delivered = [x for x in p.pushes(channel_id) if x["state"] == "exists"]
    assert delivered and all(x["result"] == "delivered" and x["status"] == 200 for x in delivered), delivered

    # The platform's own reschedule comes back as a push too, and is its own echo: one new row, one more mail.
    pushed = len(p.pushes(channel_id))
    r = p.gw.call("PUT", f"{M}/{now[1]['id']}/reschedule", p.user, json={"newDateTime": next_demo_time()})
    assert r.status_code == 200, r.text
    wait_for(lambda: len(p.pushes(channel_id)) > pushed, WITHIN_S, what="the push of our own write")
    p.caught_up()
    wait_for(lambda: len(p.mails("rescheduled")) == 2, WITHIN_S, what="the reschedule's mail")
    time.sleep(1)
    assert len(p.meetings(moved_lead)) == 3 and len(p.mails("rescheduled")) == 2
    assert [m["change_source"] for m in p.meetings(moved_lead)] == ["google", "platform", "platform"]


def test_with_every_push_dropped_the_poll_still_catches_a_move(stack):
    p = Platform(stack(), SYNC_POLL_SECONDS="5")
    channel_id = p.channel()[0]
    p.synced()
    lead, meeting = p.book()
    p.caught_up()
    before = len(p.pushes(channel_id))
    p.s.standin.admin("pushes", {"drop_all": True})
    p.admin("events/move", id=meeting["google_event_id"], shift_s=3600)

    ms = wait_for(lambda: (lambda ms: ms if len(ms) == 2 else None)(p.meetings(lead)), 30, what="the polled move")
    assert ms[1]["change_source"] == "google" and ms[0]["status"] == "rescheduled"
    dropped = p.pushes(channel_id)[before:]
    assert dropped and all(x["result"] == "dropped" for x in dropped), "no push reached the gateway"
    wait_for(lambda: len(p.mails("rescheduled")) == 1, WITHIN_S, what="the rescheduled mail")
