// A lead's page (lead.html), LeadDetailModal.tsx of the original plan
// (docs/architecture.md, "The original plan"): the demo's time
// and status, or why none was booked, with Reschedule and Cancel.
//
// The page is /leads/<leadAnalyticsId>; everything on it comes from
// GET /api/calendar/meetings/lead/<id> (the lead's meetings in every state,
// and what the scheduler decided). After each change it loads that again, so
// it shows what the server holds, not what it hoped for. A change the
// scheduler has not confirmed within the gateway's wait answers 202; the
// page then says "Saving…" and polls until the change shows, for a minute at
// most. The new time is sent with the viewer's own offset for that date, so
// the instant is the one the viewer picked whatever the calendar's zone.
//
// A lead without a scheduled demo (skipped, failed, or cancelled) can be
// booked by hand. Booking and moving check the rep's calendar: over busy time
// the API answers 409 with the busy spans, which the dialog shows with
// "Book anyway" / "Move anyway"; those resend the very time that clashed with
// allowConflict, and only while the picker still shows it.
//
// The rep's calendar is the truth (docs/sync.md): the lead's answer to the
// invitation shows beside the attendee, a decline with what the owner can do
// about it, and the history says which moves and deletes were made in Google
// Calendar rather than here.
import {
  api, explain, formatWhen, statusWords, reasonWords, el, say, showSignedOut, every, sleep,
  zoneLabel, toLocalInput, fromLocalInput, clockChangeNote, conflictNote, parseSpans, spanList,
  answerBadge, googleChange,
} from "/static/common.js";

const $ = (id) => document.getElementById(id);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const leadId = decodeURIComponent(window.location.pathname.split("/")[2] || "");
const POLL_MS = 2000;
const PENDING_MS = 60000;

let active = null;   // the lead's scheduled meeting, if it has one
let lastText = "";
let signedIn = true;
let busy = false;

/** The meeting that speaks for the lead: its scheduled one, else the one changed last. */
function pick(meetings) {
  const scheduled = meetings.filter((m) => m.status === "scheduled");
  if (scheduled.length) return scheduled[scheduled.length - 1];
  const settled = meetings.filter((m) => m.status !== "rescheduled");
  const pool = settled.length ? settled : meetings;
  return pool.slice().sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)))[0] || null;
}

function attendee(m) {
  return m.attendee_name ? `${m.attendee_name} <${m.attendee_email}>` : m.attendee_email;
}

function renderMeeting(m, meetings) {
  $("title").textContent = m.meeting_title;
  document.title = `${m.meeting_title} · Calendar booking`;
  const badge = el("span", { class: `badge ${m.status}` }, statusWords(m.status));
  const google = googleChange(m, meetings);
  let words = "";
  if (m.status === "scheduled") words = google ? "Moved to this time in your Google Calendar." : "Booked in your Google Calendar.";
  else if (m.status === "cancelled" && google) words = sameWords(m.cancellation_reason, google) ? `${google}.` : `${google}. Reason: ${m.cancellation_reason}`;
  else if (m.status === "cancelled") words = m.cancellation_reason ? `Reason: ${m.cancellation_reason}` : "No reason was given.";
  else if (m.status === "completed") words = "This demo has taken place.";
  $("demo-summary").replaceChildren(badge, " ", el("span", { id: "demo-words" }, words));
  $("demo-time").replaceChildren(el("time", { datetime: m.meeting_start_time, id: "demo-when" },
    formatWhen(m.meeting_start_time)),
  m.meeting_duration_minutes ? ` · ${m.meeting_duration_minutes} minutes` : "");
  $("demo-status").textContent = statusWords(m.status);
  const answer = answerBadge(m);
  $("demo-attendee").replaceChildren(attendee(m), answer ? " " : "", answer || "");
  const declined = m.status === "scheduled" && m.attendee_response_status === "declined";
  $("demo-declined").replaceChildren(declined ? el("p", {},
    el("span", { "aria-hidden": "true" }, "✕ "), el("strong", {}, "The lead declined the invitation."),
    " The demo stays in your calendar until you decide: reschedule it to a time that suits them, or cancel it.")
    : "");
  $("demo-declined").hidden = !declined;
  const link = m.status === "scheduled" ? m.meet_link : null;
  $("demo-link-label").hidden = !link;
  $("demo-link").hidden = !link;
  $("demo-link").replaceChildren(link ? el("a", { href: link, rel: "noopener noreferrer", target: "_blank" },
    "Join with Google Meet", el("span", { class: "visually-hidden" }, " (opens in a new tab)")) : "");
  $("demo-facts").hidden = false;
  $("demo-actions").hidden = m.status !== "scheduled";
  const note = m.status === "scheduled" ? conflictNote(m, true) : null;
  $("demo-conflict").replaceChildren(note || "");
  $("demo-conflict").hidden = !note;
}

/** A reason that only repeats what the row already says (the sync's "Deleted in Google Calendar"), or none. */
function sameWords(reason, said) {
  return !reason || reason.trim().replace(/\.$/, "").toLowerCase() === said.toLowerCase();
}

function renderNoMeeting(outcome) {
  $("demo-facts").hidden = true;
  $("demo-actions").hidden = true;
  $("demo-declined").hidden = true;
  const spans = outcome && outcome.reason === "conflict" ? parseSpans(outcome.detail) : null;
  $("demo-conflict").replaceChildren(spans ? el("div", { class: "note warn" },
    el("p", {}, "Busy in your calendar then:"), spanList(spans)) : "");
  $("demo-conflict").hidden = !spans;
  if (outcome && outcome.outcome !== "scheduled") {
    $("demo-summary").replaceChildren(el("span", { class: "badge off" }, "Not booked"), " ",
      el("span", { id: "demo-words" }, reasonWords(outcome.reason)));
  } else if (outcome) {
    $("demo-summary").replaceChildren(el("span", { class: "badge pending" }, "Booking"), " ",
      el("span", { id: "demo-words" }, "The demo is being booked; this page updates by itself."));
  } else {
    $("demo-summary").replaceChildren(el("span", { class: "badge" }, "Waiting"), " ",
      el("span", { id: "demo-words" },
        "No demo has been booked yet. Right after a call it takes a few seconds; this page updates by itself."));
  }
}

/**
 * Each row is labelled with when it happened: a row that was moved or
 * cancelled changed last at updated_at, one still as booked at created_at.
 * The demo's own time follows in words, so a row never reads as if the
 * change happened at the demo.
 */
function renderHistory(meetings) {
  const items = meetings.map((m) => {
    const changed = m.status === "scheduled" ? m.created_at || m.updated_at : m.updated_at || m.created_at;
    const google = googleChange(m, meetings);
    let words = m.status === "scheduled" ? "Booked" : statusWords(m.status);
    if (google && m.status === "completed") words += `, ${google[0].toLowerCase()}${google.slice(1)}`;
    else if (google) words = google;
    if (m.status === "cancelled" && !sameWords(m.cancellation_reason, google || "")) words += `: ${m.cancellation_reason}`;
    const demo = m.status === "scheduled" ? "for" : "was";
    return el("li", {},
      changed ? el("time", { datetime: changed }, formatWhen(changed)) : "",
      `${changed ? " — " : ""}${words} (${demo} `,
      el("time", { datetime: m.meeting_start_time, class: m.status === "scheduled" ? null : "past" },
        formatWhen(m.meeting_start_time)), ")");
  });
  $("history").replaceChildren(...items);
  $("history-card").hidden = meetings.length < 2 && !meetings.some((m) => m.status !== "scheduled");
}

function render(data) {
  const text = JSON.stringify(data);
  if (text === lastText) return;
  lastText = text;
  const shown = pick(data.meetings);
  active = shown && shown.status === "scheduled" ? shown : null;
  if (shown) renderMeeting(shown, data.meetings);
  else renderNoMeeting(data.outcome);
  // A lead the scheduler gave up on, or whose demo was cancelled, can be booked by hand.
  const decided = shown ? shown.status === "cancelled" : !!data.outcome && data.outcome.outcome !== "scheduled";
  $("book-actions").hidden = !!active || !decided;
  renderHistory(data.meetings);
  $("demo").setAttribute("aria-busy", "false");
}

async function fetchLead() {
  return (await api("GET", `/api/calendar/meetings/lead/${encodeURIComponent(leadId)}`)).data;
}

function fail(text) {
  $("demo-summary").replaceChildren(el("span", { class: "error" }, text));
  $("demo-facts").hidden = true;
  $("demo-actions").hidden = true;
  $("book-actions").hidden = true;
  $("demo-conflict").hidden = true;
  $("demo-declined").hidden = true;
  $("demo").setAttribute("aria-busy", "false");
}

async function load() {
  try {
    render(await fetchLead());
    signedIn = true;
  } catch (err) {
    lastText = "";
    if (err.status === 401) {
      signedIn = false;
      $("demo").hidden = true;
      $("history-card").hidden = true;
      showSignedOut($("signed-out"));
    } else if (err.status === 404) {
      fail("We couldn't find this lead. It may have been removed, or it belongs to another account.");
    } else {
      fail(explain(err, "load this lead"));
    }
  }
}

function notify(kind, text) {
  say($("notice"), kind, text);
  $("notice").focus();
}

/** After a 202: poll until done(data) holds, then return that data; null after PENDING_MS. */
async function settle(done) {
  const until = Date.now() + PENDING_MS;
  while (Date.now() < until) {
    await sleep(POLL_MS);
    try {
      const data = await fetchLead();
      if (done(data)) return data;
    } catch {
      // A failed poll is no verdict; the next one may get through.
    }
  }
  return null;
}

function setBusy(button, on, label) {
  busy = on;
  // Every button of the form waits: one press sends one request.
  for (const b of button.form ? button.form.querySelectorAll("button") : [button]) b.disabled = on;
  if (on) {
    button.dataset.label = button.textContent;
    button.textContent = label;
  } else if (button.dataset.label) {
    button.textContent = button.dataset.label;
  }
}

// A clash with the rep's calendar: what was asked, and what is busy then

// The time a dialog's clash is about ({kind, value, picked}); "… anyway" resends exactly that.
let clash = null;

const anywayWords = { book: "Book anyway", reschedule: "Move anyway" };

function showClash(kind, value, picked, spans) {
  clash = { kind, value, picked };
  const verb = kind === "book" ? "book" : "move";
  $(`${kind}-clash`).replaceChildren(
    el("p", {}, el("span", { "aria-hidden": "true" }, "⚠ "), el("strong", {}, "Your calendar is busy then."), " ",
      `Nothing was ${kind === "book" ? "booked" : "moved"}. `,
      spans.length ? "Busy in your calendar, in your time zone:" : ""),
    spans.length ? spanList(spans, { id: `${kind}-busy` }) : null,
    el("p", {}, `Pick another time, or press “${anywayWords[kind]}” to ${verb} the demo over it.`));
  $(`${kind}-clash`).hidden = false;
  $(`${kind}-anyway`).hidden = false;
}

function clearClash(kind) {
  if (clash && clash.kind === kind) clash = null;
  $(`${kind}-clash`).replaceChildren();
  $(`${kind}-clash`).hidden = true;
  $(`${kind}-anyway`).hidden = true;
}

/** The clash's time when "… anyway" may resend it: the picker still shows the value that clashed. */
function clashFor(kind, input) {
  return clash && clash.kind === kind && clash.value === input.value ? clash : null;
}

/** Check a picked value as both dialogs do; returns the picked time, or null after saying why not. */
function checkPicked(input, errorArea, press) {
  const picked = fromLocalInput(input.value);
  if (!picked) {
    say(errorArea, "error", "Enter a date and a time.");
    input.focus();
    return null;
  }
  if (picked.date.getTime() <= Date.now()) {
    say(errorArea, "error", "That time has already passed. Pick a time in the future.");
    input.focus();
    return null;
  }
  const value = input.value;
  const note = clockChangeNote(picked, value, press);
  if (note && noted !== value) {
    noted = value;
    say(errorArea, "info", note);
    input.focus();
    return null;
  }
  return picked;
}

// Reschedule

// The picked value whose clock-change note the user has seen: pressing again sends it.
let noted = null;

function openReschedule() {
  if (!active) return;
  noted = null;
  say($("notice"), "info", "");
  const now = new Date();
  $("reschedule-current").textContent = formatWhen(active.meeting_start_time);
  $("new-time").value = toLocalInput(new Date(active.meeting_start_time));
  $("new-time").min = toLocalInput(now);
  $("new-time-zone").textContent = `In your time zone, ${zoneLabel()}. The attendee gets an updated invitation.`;
  say($("reschedule-error"), "error", "");
  clearClash("reschedule");
  $("reschedule-dialog").showModal();
  $("new-time").focus();
}

async function submitReschedule(ev) {
  ev.preventDefault();
  if (busy || !active) return;
  const picked = checkPicked($("new-time"), $("reschedule-error"), "Move the demo");
  if (picked) await reschedule(picked, false);
}

/*
 * After a booking or a move the gateway answered: with 202 (Google still
 * being updated) wait a little for the change to arrive, then show the page
 * as it is and say what happened, and whether the meeting overlaps other
 * events. arrived(data) tells when a pending change has landed.
 */
async function showWritten(answer, picked, arrived, stillSaving, said) {
  if (answer.status === 202) {
    notify("info", "Saving… Google Calendar is being updated.");
    const data = await settle(arrived);
    lastText = "";
    if (data) render(data);
    else await load();
    if (!data) {
      notify("info", stillSaving);
      return;
    }
  } else {
    lastText = "";
    await load();
  }
  const when = active ? formatWhen(active.meeting_start_time) : formatWhen(picked.date.toISOString());
  const over = active && active.has_conflict === true ? " It overlaps other events in your calendar." : "";
  notify("ok", said(when) + over);
}

async function rescheduleAnyway() {
  if (busy || !active) return;
  const c = clashFor("reschedule", $("new-time"));
  if (c) await reschedule(c.picked, true);
}

async function reschedule(picked, anyway) {
  const meeting = active;
  const value = $("new-time").value;
  const button = anyway ? $("reschedule-anyway") : $("reschedule-save");
  setBusy(button, true, "Moving…");
  say($("reschedule-error"), "error", "");
  const body = { newDateTime: picked.text };
  if (anyway) body.allowConflict = true;
  let answer;
  try {
    answer = await api("PUT", `/api/calendar/meetings/${meeting.id}/reschedule`, body);
  } catch (err) {
    setBusy(button, false);
    if (err.status === 409 && err.busy) {
      showClash("reschedule", value, picked, err.busy);
      $("new-time").focus();
      return;
    }
    if (err.status === 400) {
      say($("reschedule-error"), "error", explain(err, "move the demo"));
      $("new-time").focus();
      return;
    }
    $("reschedule-dialog").close();
    lastText = "";
    await load();
    notify("error", explain(err, "move the demo"));
    return;
  }
  setBusy(button, false);
  clearClash("reschedule");
  $("reschedule-dialog").close();
  await showWritten(answer, picked,
    (d) => d.meetings.some((m) => m.id === meeting.id && m.status !== "scheduled"),
    "Still saving. The new time will show here once Google Calendar confirms it; check again in a minute.",
    (when) => `The demo now starts ${when}. The attendee gets an updated invitation.`);
}

// Book (a lead without a scheduled demo)

function openBook() {
  if (active) return;
  noted = null;
  say($("notice"), "info", "");
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 1);
  tomorrow.setHours(10, 0, 0, 0);
  $("book-time").value = toLocalInput(tomorrow);
  $("book-time").min = toLocalInput(new Date());
  $("book-email").value = "";
  $("book-time-zone").textContent = `In your time zone, ${zoneLabel()}.`;
  say($("book-error"), "error", "");
  clearClash("book");
  $("book-dialog").showModal();
  $("book-time").focus();
}

async function submitBook(ev) {
  ev.preventDefault();
  if (busy || active) return;
  const picked = checkPicked($("book-time"), $("book-error"), "Book the demo");
  if (picked) await book(picked, false);
}

async function bookAnyway() {
  if (busy || active) return;
  const c = clashFor("book", $("book-time"));
  if (c) await book(c.picked, true);
}

async function book(picked, anyway) {
  const value = $("book-time").value;
  const button = anyway ? $("book-anyway") : $("book-save");
  const body = { leadAnalyticsId: leadId, dateTime: picked.text };
  const email = $("book-email").value.trim();
  if (email) body.attendeeEmail = email;
  if (anyway) body.allowConflict = true;
  setBusy(button, true, "Booking…");
  say($("book-error"), "error", "");
  let answer;
  try {
    answer = await api("POST", "/api/calendar/meetings", body);
  } catch (err) {
    setBusy(button, false);
    if (err.status === 409 && err.busy) {
      showClash("book", value, picked, err.busy);
      $("book-time").focus();
      return;
    }
    if (err.status === 400 || err.status === 413) {
      say($("book-error"), "error", explain(err, "book the demo"));
      $("book-time").focus();
      return;
    }
    $("book-dialog").close();
    lastText = "";
    await load();
    notify("error", err.status === 409 && err.code === "conflict"
      ? "This lead already has a demo booked, so we didn't book another. The page now shows it."
      : explain(err, "book the demo"));
    return;
  }
  setBusy(button, false);
  clearClash("book");
  $("book-dialog").close();
  await showWritten(answer, picked,
    (d) => d.meetings.some((m) => m.status === "scheduled"),
    "Still saving. The demo will show here once Google Calendar confirms it; check again in a minute.",
    (when) => `The demo is booked for ${when}. The attendee gets an invitation.`);
}

// Cancel

function openCancel() {
  if (!active) return;
  say($("notice"), "info", "");
  $("cancel-reason").value = "";
  say($("cancel-error"), "error", "");
  $("cancel-dialog").showModal();
  $("cancel-reason").focus();
}

async function submitCancel(ev) {
  ev.preventDefault();
  if (busy || !active) return;
  const meeting = active;
  const reason = $("cancel-reason").value.trim();
  const button = $("cancel-confirm");
  setBusy(button, true, "Cancelling…");
  let answer;
  try {
    answer = await api("DELETE", `/api/calendar/meetings/${meeting.id}`, reason ? { reason } : {});
  } catch (err) {
    setBusy(button, false);
    if (err.status === 400 || err.status === 413) {
      say($("cancel-error"), "error", explain(err, "cancel the demo"));
      return;
    }
    $("cancel-dialog").close();
    lastText = "";
    await load();
    notify("error", explain(err, "cancel the demo"));
    return;
  }
  setBusy(button, false);
  $("cancel-dialog").close();
  if (answer.status === 202) {
    notify("info", "Saving… Google Calendar is being updated.");
    const data = await settle((d) => d.meetings.some((m) => m.id === meeting.id && m.status !== "scheduled"));
    lastText = "";
    if (data) render(data);
    else await load();
    if (!data) {
      notify("info", "Still saving. The cancellation will show here once Google Calendar confirms it; check again in a minute.");
      return;
    }
  } else {
    lastText = "";
    await load();
  }
  notify("ok", "The demo is cancelled and removed from your Google Calendar. The attendee has been told.");
}

function init() {
  $("notice").setAttribute("tabindex", "-1");
  if (!UUID.test(leadId)) {
    fail("This link doesn't point to a lead. Open the lead from the list of meetings.");
    return;
  }
  $("reschedule").addEventListener("click", openReschedule);
  $("cancel").addEventListener("click", openCancel);
  $("reschedule-form").addEventListener("submit", submitReschedule);
  $("cancel-form").addEventListener("submit", submitCancel);
  $("book").addEventListener("click", openBook);
  $("book-form").addEventListener("submit", submitBook);
  $("book-anyway").addEventListener("click", bookAnyway);
  $("book-close").addEventListener("click", () => $("book-dialog").close());
  $("reschedule-anyway").addEventListener("click", rescheduleAnyway);
  // Another time is another question: the clash (and "… anyway") was about the one asked.
  $("book-time").addEventListener("input", () => clearClash("book"));
  $("new-time").addEventListener("input", () => clearClash("reschedule"));
  $("reschedule-close").addEventListener("click", () => $("reschedule-dialog").close());
  $("cancel-close").addEventListener("click", () => $("cancel-dialog").close());
  // A refresh under an open dialog would change what it is about.
  every(15000, () => {
    if (signedIn && !busy && !document.querySelector("dialog[open]")) load();
  });
  load();
}

init();
