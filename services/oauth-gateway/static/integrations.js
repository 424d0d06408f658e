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
import {
  api, explain, formatWhen, statusWords, el, say, showSignedOut, every, viewerZone,
} from "/static/common.js";

const $ = (id) => document.getElementById(id);
const LIMIT = 25;

const callbackWords = {
  access_denied: "Google Calendar wasn't connected: access was declined on Google's page. Try again and choose Allow.",
  missing_scope: "Google Calendar wasn't connected: permission to manage your calendar's events wasn't given. Try again and leave that box ticked.",
  invalid_state: "That connection attempt had expired or was already used. Please start again with Connect Google Calendar.",
  exchange_failed: "Google didn't complete the connection. Please try again in a moment.",
};

let signedIn = true;
let lastMeetings = "";

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
      m.attendee_name ? el("small", {}, m.attendee_email) : null),
    el("td", { "data-label": "When", class: "when" },
      el("time", { datetime: m.meeting_start_time }, formatWhen(m.meeting_start_time)),
      minutes ? el("small", {}, minutes) : null),
    el("td", { "data-label": "Status" }, el("span", { class: `badge ${m.status}` }, statusWords(m.status))));
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
    say($("calendar-error"), "error", "");
  } catch (err) {
    if (err.status === 401) {
      signedIn = false;
      $("calendar").hidden = true;
      $("meetings").hidden = true;
      showSignedOut($("signed-out"));
      return;
    }
    $("calendar").hidden = false;
    say($("calendar-error"), "error", explain(err, "load your calendar's status"));
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
  every(15000, () => {
    if (signedIn) load();
  });
  load();
}

init();
