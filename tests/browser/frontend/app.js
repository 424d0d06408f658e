// The frontend's part of the Google Calendar connect flow (docs/architecture.md,
// "HTTP API"), as small as it can be: the platform's JWT is
// in localStorage; the page asks the gateway for the authorization URL with
// it (Accept: application/json), sends the browser there, and after
// Google's consent the gateway's callback brings it back here with
// ?google=connected or ?google=error&reason=...
"use strict";

const token = localStorage.getItem("token");
const statusLine = document.getElementById("status");
const result = document.getElementById("result");
const connect = document.getElementById("connect");

function api(path) {
  return fetch(path, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } });
}

function say(text, kind) {
  result.textContent = text;
  result.className = kind;
  result.hidden = false;
}

async function showStatus() {
  const r = await api("/api/integrations/google/status");
  if (!r.ok) {
    statusLine.textContent = `Status unavailable (${r.status})`;
    return;
  }
  const s = await r.json();
  statusLine.textContent = s.connected ? `Connected as ${s.email}` : "Not connected";
  statusLine.className = s.connected ? "connected" : "";
  connect.textContent = s.connected ? "Reconnect Google Calendar" : "Connect Google Calendar";
}

connect.addEventListener("click", async () => {
  const r = await api("/api/integrations/google/auth");
  const body = await r.json();
  if (!r.ok || !body.authUrl) {
    say(`Could not start the connection (${r.status})`, "error");
    return;
  }
  window.location.assign(body.authUrl);
});

const outcome = new URLSearchParams(window.location.search);
if (outcome.get("google") === "connected") {
  say("Google Calendar connected.", "ok");
} else if (outcome.get("google") === "error") {
  say(`Google Calendar was not connected: ${outcome.get("reason") || "unknown reason"}.`, "error");
}
showStatus();
