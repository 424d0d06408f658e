// The integrations page (index.html): the Google Calendar connection and the
// upcoming meetings, as Integrations.tsx of the original plan has them
// (docs/architecture.md, "The original plan").
//
// "Connect Google Calendar" is a plain navigation to the gateway's /auth,
// which answers with a redirect to Google's consent page (the browser sends
// the session cookie along); Google's answer comes back through the
// gateway's callback to this page as ?google=connected or
// ?google=error&reason=..., which the banner puts into words and then drops
// from the address, so a reload does not announce it again. The meetings list
// refreshes itself every 15 seconds while the page is visible, because a call
// can book a demo at any moment.
//
// "Your free time" (only while connected) asks GET /api/calendar/availability
// for the next 5 days and lists the free slots by day in the viewer's own
// time zone. Each load is a question to Google, so it runs when the page
// opens, when the calendar becomes connected, and on Refresh, not every 15
// seconds.
import {
  api, explain, formatWhen, statusWords, el, say, showSignedOut, every, viewerZone, conflictNote, zoneLabel,
  answerBadge,
} from "/static/common.js";

const $ = (id) => document.getElementById(id);
const LIMIT = 25;
const FREE_DAYS = 5;

const callbackWords = {
  access_denied: "Google Calendar wasn't connected: access was declined on Google's page. Try again and choose Allow.",
  missing_scope: "Google Calendar wasn't connected: permission to manage your calendar's events wasn't given. Try again and leave that box ticked.",
  invalid_state: "That connection attempt had expired or was already used. Please start again with Connect Google Calendar.",
  exchange_failed: "Google didn't complete the connection. Please try again in a moment.",
};

let signedIn = true;
let lastMeetings = "";
let connected = null;  // the last status seen: a change to connected loads the free time
let freeLoading = false;

function showCallbackBanner() {
  const q = new URLSearchParams(window.location.search);
  const outcome = q.get("google");
  if (!outcome) return;
  if (outcome === "connected") {
    say($("banner"), "ok", "Google Calendar is connected. New demos from your calls will be booked into it.");
  } else {
    say($("banner"), "error", callbackWords[q.get("reason")] || "Google Calendar couldn't be connected. Please try again.");
  }
  window.history.replaceState(null, "", window.location.pathname);
}

function renderStatus(status) {
  const line = $("status");
  if (status.connected) {
    // The spaces between the parts are text, so the line also reads right without styles.
    line.replaceChildren(el("span", { class: "badge connected" }, "Connected"), " ",
      status.email ? el("span", {}, "as ", el("strong", {}, status.email)) : "");
  } else {
    line.replaceChildren(el("span", { class: "badge off" }, "Not connected"), " ",
      el("span", {}, "Demos from your calls aren't being booked."));
  }
  $("connect").hidden = status.connected;
  $("disconnect").hidden = !status.connected;
  $("connect").disabled = false;
  $("disconnect").disabled = false;
}

function meetingRow(m) {
  const title = m.lead_analytics_id
    ? el("a", { href: `/leads/${encodeURIComponent(m.lead_analytics_id)}` }, m.meeting_title)
    : m.meeting_title;
  const minutes = m.meeting_duration_minutes ? `${m.meeting_duration_minutes} minutes` : null;
  return el("tr", { "data-meeting-id": m.id },
    el("td", { "data-label": "Meeting" }, title),
    el("td", { "data-label": "Attendee", class: "who" }, m.attendee_name || m.attendee_email,
      m.attendee_name ? el("small", {}, m.attendee_email) : null, answerBadge(m)),
    el("td", { "data-label": "When", class: "when" },
      el("time", { datetime: m.meeting_start_time }, formatWhen(m.meeting_start_time)),
      minutes ? el("small", {}, minutes) : null),
    el("td", { "data-label": "Status" }, el("span", { class: `badge ${m.status}` }, statusWords(m.status)),
      conflictNote(m)));
}

function renderMeetings(meetings, connected) {
  const text = JSON.stringify(meetings);
  // Rebuilding only on a change keeps the keyboard focus where it is on a quiet refresh.
  if (text === lastMeetings) return;
  lastMeetings = text;
  const table = $("meetings-table");
  table.tBodies[0].replaceChildren(...meetings.map(meetingRow));
  table.hidden = meetings.length === 0;
  let note = "";
  if (meetings.length === 0) {
    note = connected
      ? "No upcoming meetings yet. When a call books a demo, it shows up here within a few seconds."
      : "No upcoming meetings. Connect Google Calendar to have demos from your calls booked automatically.";
  } else if (meetings.length === LIMIT) {
    note = `Showing the next ${LIMIT} meetings.`;
  }
  $("meetings-note").textContent = note;
}

async function load() {
  try {
    const [status, list] = await Promise.all([
      api("GET", "/api/integrations/google/status"),
      api("GET", `/api/calendar/meetings?limit=${LIMIT}`),
    ]);
    signedIn = true;
    $("signed-out").hidden = true;
    $("calendar").hidden = false;
    $("meetings").hidden = false;
    renderStatus(status.data);
    renderMeetings(list.data.meetings, status.data.connected);
    const was = connected;
    connected = status.data.connected;
    $("free").hidden = !connected;
    if (connected && !was) loadFree();
    say($("calendar-error"), "error", "");
  } catch (err) {
    if (err.status === 401) {
      signedIn = false;
      connected = null;
      $("calendar").hidden = true;
      $("meetings").hidden = true;
      $("free").hidden = true;
      showSignedOut($("signed-out"));
      return;
    }
    $("calendar").hidden = false;
    say($("calendar-error"), "error", explain(err, "load your calendar's status"));
  }
}

// Your free time

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });

/** Midnight at the start of the viewer's day after d. */
function nextMidnight(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1);
}

/**
 * The free spans cut at the viewer's midnights, grouped by the viewer's day:
 * [{day: Date (its midnight), slots: [{start, end, endsAtMidnight}]}].
 */
function freeByDay(free) {
  const days = new Map();
  for (const span of free) {
    let start = new Date(span.start);
    const end = new Date(span.end);
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) continue;
    while (start < end) {
      const midnight = nextMidnight(start);
      const stop = end < midnight ? end : midnight;
      const day = new Date(start.getFullYear(), start.getMonth(), start.getDate());
      if (!days.has(day.getTime())) days.set(day.getTime(), { day, slots: [] });
      days.get(day.getTime()).slots.push({ start, end: stop, endsAtMidnight: stop.getTime() === midnight.getTime() });
      start = stop;
    }
  }
  return [...days.values()].sort((a, b) => a.day - b.day);
}

function slotItem(slot) {
  // A slot that runs to midnight says so in words rather than as 00:00 of the next day.
  const end = slot.endsAtMidnight ? "midnight" : clockFormat.format(slot.end);
  return el("li", {},
    el("time", { datetime: slot.start.toISOString() }, clockFormat.format(slot.start)), " – ",
    el("time", { datetime: slot.end.toISOString() }, end));
}

function renderFree(free, minutes) {
  const groups = freeByDay(free);
  $("free-days").replaceChildren(...groups.map((g, i) => el("section", {
    class: "free-day", "aria-labelledby": `free-day-${i}`,
  },
  el("h3", { id: `free-day-${i}` }, dayFormat.format(g.day)),
  el("ul", { class: "slots", "aria-label": `Free on ${dayFormat.format(g.day)}` }, ...g.slots.map(slotItem)))));
  $("free-note").textContent = groups.length
    ? `Free slots of at least ${minutes} minutes, in your time zone, ${zoneLabel()}.`
    : `No free slot of ${minutes} minutes or more in the next ${FREE_DAYS} days.`;
}

function freeWords(err) {
  if (err.status === 504 || err.status === 503) {
    return "The calendar service is busy or unreachable right now, so we couldn't load your free time. Try Refresh in a minute.";
  }
  if (err.status === 502) {
    return "Google Calendar couldn't tell us your free time. Try Refresh in a moment; if it keeps happening, disconnect and connect Google Calendar again.";
  }
  return explain(err, "load your free time");
}

async function loadFree() {
  if (freeLoading) return;
  freeLoading = true;
  const minutes = Number($("free-duration").value) || 30;
  const from = new Date();
  const to = new Date(from.getTime() + FREE_DAYS * 86400000);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), duration_minutes: String(minutes) });
  $("free-note").textContent = "Loading your free time…";
  $("free-days").setAttribute("aria-busy", "true");
  $("free-refresh").disabled = true;
  try {
    const { data } = await api("GET", `/api/calendar/availability?${q}`);
    say($("free-error"), "error", "");
    renderFree(data.free || [], minutes);
  } catch (err) {
    if (err.status === 401 || (err.status === 409 && err.code === "not_connected")) {
      // The page's own load says what to do; the section follows the connection.
      await load();
      $("free-note").textContent = "";
    } else {
      $("free-days").replaceChildren();
      $("free-note").textContent = "";
      say($("free-error"), "error", freeWords(err));
    }
  } finally {
    freeLoading = false;
    $("free-refresh").disabled = false;
    $("free-days").setAttribute("aria-busy", "false");
  }
}

function connect() {
  $("connect").disabled = true;
  $("status").textContent = "Opening Google…";
  // A navigation, not fetch(): the gateway answers with a redirect to Google's page.
  window.location.assign("/api/integrations/google/auth");
}

async function disconnect() {
  $("disconnect").disabled = true;
  $("status").textContent = "Disconnecting…";
  try {
    const { data } = await api("POST", "/api/integrations/google/disconnect");
    if (data && data.revoked === false) {
      say($("banner"), "error", data.message);
    } else {
      say($("banner"), "ok", "Google Calendar is disconnected. Connect it again at any time.");
    }
  } catch (err) {
    say($("calendar-error"), "error", explain(err, "disconnect Google Calendar"));
  }
  await load();
  $("connect").focus();
}

function init() {
  $("when-head").textContent = `When (your time, ${viewerZone()})`;
  showCallbackBanner();
  $("connect").addEventListener("click", connect);
  const dialog = $("disconnect-dialog");
  $("disconnect").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "disconnect") disconnect();
    else $("disconnect").focus();
    dialog.returnValue = "";
  });
  $("refresh").addEventListener("click", async () => {
    $("meetings-note").textContent = "Refreshing…";
    lastMeetings = "";
    await load();
  });
  $("free-refresh").addEventListener("click", loadFree);
  $("free-duration").addEventListener("change", loadFree);
  every(15000, () => {
    if (signedIn) load();
  });
  load();
}

init();
