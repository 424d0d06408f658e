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
import {
  api, explain, formatWhen, statusWords, reasonWords, el, say, showSignedOut, every, sleep,
  zoneLabel, toLocalInput, fromLocalInput, clockChangeNote,
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

function renderMeeting(m) {
  $("title").textContent = m.meeting_title;
  document.title = `${m.meeting_title} · Calendar booking`;
  const badge = el("span", { class: `badge ${m.status}` }, statusWords(m.status));
  let words = "";
  if (m.status === "scheduled") words = "Booked in your Google Calendar.";
  else if (m.status === "cancelled") words = m.cancellation_reason ? `Reason: ${m.cancellation_reason}` : "No reason was given.";
  else if (m.status === "completed") words = "This demo has taken place.";
  $("demo-summary").replaceChildren(badge, " ", el("span", { id: "demo-words" }, words));
  $("demo-time").replaceChildren(el("time", { datetime: m.meeting_start_time, id: "demo-when" },
    formatWhen(m.meeting_start_time)),
  m.meeting_duration_minutes ? ` · ${m.meeting_duration_minutes} minutes` : "");
  $("demo-status").textContent = statusWords(m.status);
  $("demo-attendee").textContent = attendee(m);
  const link = m.status === "scheduled" ? m.meet_link : null;
  $("demo-link-label").hidden = !link;
  $("demo-link").hidden = !link;
  $("demo-link").replaceChildren(link ? el("a", { href: link, rel: "noopener noreferrer", target: "_blank" },
    "Join with Google Meet", el("span", { class: "visually-hidden" }, " (opens in a new tab)")) : "");
  $("demo-facts").hidden = false;
  $("demo-actions").hidden = m.status !== "scheduled";
}

function renderNoMeeting(outcome) {
  $("demo-facts").hidden = true;
  $("demo-actions").hidden = true;
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
    let words = m.status === "scheduled" ? "Booked" : statusWords(m.status);
    if (m.status === "cancelled" && m.cancellation_reason) words += `: ${m.cancellation_reason}`;
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
  if (shown) renderMeeting(shown);
  else renderNoMeeting(data.outcome);
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
  button.disabled = on;
  if (on) {
    button.dataset.label = button.textContent;
    button.textContent = label;
  } else if (button.dataset.label) {
    button.textContent = button.dataset.label;
  }
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
  $("reschedule-dialog").showModal();
  $("new-time").focus();
}

async function submitReschedule(ev) {
  ev.preventDefault();
  if (busy || !active) return;
  const picked = fromLocalInput($("new-time").value);
  if (!picked) {
    say($("reschedule-error"), "error", "Enter a date and a time.");
    $("new-time").focus();
    return;
  }
  if (picked.date.getTime() <= Date.now()) {
    say($("reschedule-error"), "error", "That time has already passed. Pick a time in the future.");
    $("new-time").focus();
    return;
  }
  const value = $("new-time").value;
  const note = clockChangeNote(picked, value);
  if (note && noted !== value) {
    noted = value;
    say($("reschedule-error"), "info", note);
    $("new-time").focus();
    return;
  }
  const meeting = active;
  const button = $("reschedule-save");
  setBusy(button, true, "Moving…");
  let answer;
  try {
    answer = await api("PUT", `/api/calendar/meetings/${meeting.id}/reschedule`, { newDateTime: picked.text });
  } catch (err) {
    setBusy(button, false);
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
  $("reschedule-dialog").close();
  if (answer.status === 202) {
    notify("info", "Saving… Google Calendar is being updated.");
    const data = await settle((d) => d.meetings.some((m) => m.id === meeting.id && m.status !== "scheduled"));
    lastText = "";
    if (data) render(data);
    else await load();
    if (!data) {
      notify("info", "Still saving. The new time will show here once Google Calendar confirms it; check again in a minute.");
      return;
    }
  } else {
    lastText = "";
    await load();
  }
  const when = active ? formatWhen(active.meeting_start_time) : formatWhen(picked.date.toISOString());
  notify("ok", `The demo now starts ${when}. The attendee gets an updated invitation.`);
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
  $("reschedule-close").addEventListener("click", () => $("reschedule-dialog").close());
  $("cancel-close").addEventListener("click", () => $("cancel-dialog").close());
  // A refresh under an open dialog would change what it is about.
  every(15000, () => {
    if (signedIn && !busy && !$("reschedule-dialog").open && !$("cancel-dialog").open) load();
  });
  load();
}

init();
