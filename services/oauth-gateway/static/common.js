// What both pages of the reference web UI share: calling the API, turning its
// answers into words a user understands, and showing times in the viewer's
// own time zone.
//
// The session is the platform's HttpOnly cookie, which scripts cannot read;
// the browser sends it by itself. The gateway counts that cookie on the API
// only when a request carries "X-Requested-With: fetch" (its defence against
// cross-site requests), so every call goes through api() below. Everything
// that came from a call (titles, names, reasons) is untrusted and reaches
// the page as text (textContent), never as HTML.

/** An answer that was not a success, with what to tell the user. */
export class ApiError extends Error {
  constructor(status, code, message, data) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    // A 409 over the rep's busy time lists the busy spans; other answers have none.
    this.busy = data && Array.isArray(data.busy) ? data.busy : null;
  }
}

/**
 * Call the API. Resolves to {status, data} for 2xx answers (data is the JSON
 * body, or null); rejects with an ApiError otherwise, status 0 when the
 * server could not be reached at all.
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-Requested-With": "fetch" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "the server could not be reached");
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code, err.message, data);
  }
  return { status: res.status, data };
}

/**
 * Words for a failed call. `doing` completes "We couldn't ..." ("move the
 * demo"); the API's own message is for developers and only decides between
 * cases here.
 */
export function explain(err, doing = "do that") {
  if (!(err instanceof ApiError)) return `Something went wrong and we couldn't ${doing}. Please try again.`;
  switch (err.status) {
    case 0:
      return `We couldn't reach the server, so we couldn't ${doing}. Check your connection and try again.`;
    case 400:
      if (/past/.test(err.message)) return "That time has already passed. Pick a time in the future.";
      return `That wasn't accepted, so we couldn't ${doing}. Check what you entered and try again.`;
    case 401:
      return "Your session has ended. Sign in again, then come back to this page.";
    case 404:
      return "We couldn't find this meeting any more. It may have been removed, or it belongs to another account.";
    case 409:
      if (err.code === "not_connected") {
        return `Google Calendar isn't connected, so we couldn't ${doing}. Connect it on the Integrations page and try again.`;
      }
      return `This meeting was already changed (moved or cancelled), so we couldn't ${doing}. The page now shows where it stands.`;
    case 413:
      return "That text is too long. Shorten it and try again.";
    case 502:
      return `Google Calendar refused the change, so we couldn't ${doing}. Try again in a moment; if it keeps happening, disconnect and connect Google Calendar again.`;
    case 503:
    case 504:
      return `The calendar service is busy or unreachable right now, so we couldn't ${doing}. Nothing was changed. Try again in a minute.`;
    default:
      return `Something went wrong and we couldn't ${doing}. Please try again.`;
  }
}

/** The viewer's IANA time zone, e.g. "Europe/Berlin". */
export function viewerZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

const whenFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric",
  hour: "numeric", minute: "2-digit", timeZoneName: "short",
});

/** An RFC 3339 instant as the viewer reads it: "Thu, 18 Sep 2099, 13:30 GMT+2". */
export function formatWhen(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : whenFormat.format(d);
}

const spanFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric",
  hour: "numeric", minute: "2-digit", timeZoneName: "short",
});

/** A span {start, end} as the viewer reads it: "Thu, 18 Sep 2099, 13:30 – 14:00 CEST". */
export function formatSpan(span) {
  const a = new Date(span.start);
  const b = new Date(span.end);
  if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime())) return `${span.start} – ${span.end}`;
  return spanFormat.formatRange(a, b);
}

/**
 * The busy spans a meeting's conflict_detail or a conflict outcome's detail
 * names ("[the calendar is busy then: ]<start> to <end>, <start> to <end>[ and
 * 2 more]"), or null when the text is something else (then it is shown as it
 * is). A count of spans left out is in the array's `more`.
 */
export function parseSpans(text) {
  if (typeof text !== "string") return null;
  const first = text.search(/\d{4}-\d{2}-\d{2}T/);
  if (first < 0 || (first > 0 && !/:\s*$/.test(text.slice(0, first)))) return null;
  let rest = text.slice(first);
  let more = 0;
  const tail = / and (\d+) more\s*$/.exec(rest);
  if (tail) {
    more = Number(tail[1]);
    rest = rest.slice(0, tail.index);
  }
  const spans = [];
  for (const part of rest.split(/,\s*/)) {
    const m = /^\s*(\d{4}-\d{2}-\d{2}T\S+)\s+to\s+(\d{4}-\d{2}-\d{2}T\S+)\s*$/.exec(part);
    if (!m || Number.isNaN(new Date(m[1]).getTime()) || Number.isNaN(new Date(m[2]).getTime())) return null;
    spans.push({ start: m[1], end: m[2] });
  }
  spans.more = more;
  return spans;
}

/** A list of busy spans in the viewer's time, each a <time> range. */
export function spanList(spans, attrs = {}) {
  return el("ul", { class: "spans", ...attrs }, ...spans.map((s) => el("li", {},
    el("time", { datetime: s.start }, formatSpan(s)))),
  spans.more ? el("li", {}, `and ${spans.more} more`) : null);
}

/**
 * What a meeting's conflict check found, as a note to show with it, or null
 * when there is nothing to say (the slot was free, or it predates checks).
 * `long` adds the busy spans or why the calendar was not checked.
 */
export function conflictNote(m, long = false) {
  if (m.has_conflict === true) {
    const spans = long ? parseSpans(m.conflict_detail) : null;
    return el("div", { class: "note warn conflict-note" },
      el("p", {}, el("span", { class: "icon", "aria-hidden": "true" }, "⚠ "),
        el("strong", {}, "Overlaps other events in your calendar")),
      spans ? el("p", { class: "hint" }, "Busy then:") : null,
      spans ? spanList(spans) : null,
      long && !spans && m.conflict_detail ? el("p", { class: "hint" }, m.conflict_detail) : null);
  }
  if (m.has_conflict === null && m.conflict_detail) {
    return el("div", { class: "note soft conflict-note" },
      el("p", {}, el("span", { class: "icon", "aria-hidden": "true" }, "ⓘ "), "Calendar not checked for conflicts"),
      long ? el("p", { class: "hint" }, m.conflict_detail) : null);
  }
  return null;
}

/** The viewer's zone with its current offset, for labels: "Europe/Berlin (GMT+2)". */
export function zoneLabel(date = new Date()) {
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "shortOffset" })
    .formatToParts(date).find((p) => p.type === "timeZoneName");
  return part ? `${viewerZone()} (${part.value})` : viewerZone();
}

const pad = (n) => String(n).padStart(2, "0");

/** A Date as the value of an <input type="datetime-local"> in the viewer's zone. */
export function toLocalInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * A datetime-local value as ISO 8601 with the viewer's offset at that
 * moment ("2099-09-18T13:30:00+02:00"), or null when it is no valid time.
 * The Date normalises a wall time that a clock change skips, and the text is
 * made from the normalised Date, so time and offset always agree.
 *
 * Around a clock change the value may not name one moment: skipped is true
 * when the clocks jump over it (the Date then lies after the jump), and
 * second is the later of two moments when the clocks go back over it (the
 * Date is the first). The caller tells the user before it uses either.
 */
export function fromLocalInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value || "");
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  if (Number.isNaN(d.getTime())) return null;
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  const skipped = toLocalInput(d) !== value;
  let second = null;
  // Clocks go back by an hour almost everywhere, by half an hour in a few places.
  for (const minutes of [30, 60]) {
    const later = new Date(d.getTime() + minutes * 60000);
    if (!skipped && !second && toLocalInput(later) === value) second = later;
  }
  return { date: d, text, skipped, second };
}

/**
 * What the user should know before a picked time is sent, or "" when it
 * names one moment: a time the clocks skip, or one they pass twice.
 */
export function clockChangeNote(picked, value, press = "Move the demo") {
  const [day, time] = value.split("T");
  const [y, mo, d] = day.split("-").map(Number);
  const dayWords = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short",
    year: "numeric" }).format(new Date(y, mo - 1, d, 12));
  const where = `${dayWords} in ${viewerZone()}`;
  if (picked.skipped) {
    return `${time} doesn't exist on ${where}: the clocks jump forward over it. The demo would start at `
      + `${formatWhen(picked.date.toISOString())} instead. Press “${press}” again to use that time, `
      + "or pick another.";
  }
  if (picked.second) {
    return `${time} happens twice on ${where}: the clocks go back over it. The demo would start at the first, `
      + `${formatWhen(picked.date.toISOString())}, not the second, ${formatWhen(picked.second.toISOString())}. `
      + `Press “${press}” again to use the first, or pick another time.`;
  }
  return "";
}

const statusWordsMap = {
  scheduled: "Scheduled",
  cancelled: "Cancelled",
  rescheduled: "Moved to a new time",
  completed: "Done",
};

/** A meeting's status in words. */
export function statusWords(status) {
  return statusWordsMap[status] || status;
}

const answerWordsMap = {
  needsAction: "No answer yet",
  accepted: "Accepted",
  declined: "Declined",
  tentative: "Maybe (tentative)",
};

/**
 * The lead's answer to the invitation, as Google Calendar shows it, for
 * beside the attendee; null before a sync has seen the event. A decline is
 * marked with more than its colour, since the owner has to act on it.
 */
export function answerBadge(m) {
  const answer = m.attendee_response_status;
  if (!Object.hasOwn(answerWordsMap, answer)) return null;
  return el("span", { class: `badge answer ${answer}` },
    el("span", { class: "visually-hidden" }, "Invitation: "),
    answer === "declined" ? el("span", { "aria-hidden": "true" }, "✕ ") : null,
    answerWordsMap[answer]);
}

/**
 * How a change made in Google Calendar reads on a meeting's row, or null
 * for a row the platform made and ended. A row ended by the rep's move or
 * delete there says so; so does the row the move created (its own
 * change_source, or the row it replaced, says it), while it stands.
 */
export function googleChange(m, meetings = []) {
  if (m.change_source === "google" && m.status === "rescheduled") return "Moved in Google Calendar";
  if (m.change_source === "google" && m.status === "cancelled") return "Deleted in Google Calendar";
  if (m.status !== "scheduled" && m.status !== "completed") return null;
  const before = meetings.find((p) => p.id === m.rescheduled_from_meeting_id);
  const created = m.change_source === "google"
    || (before && before.change_source === "google" && before.status === "rescheduled");
  return created ? "Moved in Google Calendar" : null;
}

const reasonWordsMap = {
  no_datetime: "The call didn't include a demo time.",
  bad_datetime: "The demo time from the call couldn't be understood.",
  past_datetime: "The demo time from the call had already passed.",
  no_email: "The call didn't give an email address to invite.",
  not_connected: "Google Calendar wasn't connected when the call was analysed.",
  not_individual: "This call's analysis wasn't for a single lead, so no demo was booked.",
  google_rejected: "Google Calendar refused to create the event.",
  retries_exhausted: "Google Calendar couldn't be reached for a long time, so booking was given up.",
  grant_revoked: "Access to Google Calendar had been removed, so the demo couldn't be booked.",
  unknown_lead: "This lead couldn't be found when it was time to book the demo.",
  conflict: "Your Google Calendar was already busy at the demo time from the call, so no demo was booked. "
    + "Book it at another time, or book it anyway.",
};

/** Why the scheduler made no meeting for a lead, in words. */
export function reasonWords(reason) {
  return reasonWordsMap[reason] || "The demo couldn't be booked.";
}

/** Make an element with text (never HTML) and attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Show text in a message area (kind "ok", "info" or "error"); an empty text hides it. */
export function say(area, kind, text) {
  area.className = `message ${kind}`;
  area.setAttribute("role", kind === "error" ? "alert" : "status");
  area.textContent = text || "";
}

/**
 * The signed-out view: what to do, and in the local stack the sign-in
 * helper's link (the gateway fills the meta tag in only when it has one).
 */
export function showSignedOut(box) {
  const helper = document.querySelector('meta[name="dev-sign-in"]')?.content;
  box.replaceChildren(
    el("h2", {}, "You're not signed in"),
    el("p", {}, "Sign in to the platform, then open this page again."),
  );
  if (helper) {
    // Back to this very page once signed in; the helper takes only a path on this site.
    const next = location.pathname + location.search;
    const href = `${helper}?next=${encodeURIComponent(next)}`;
    box.append(el("p", {}, el("a", { href, class: "button" }, "Sign in as the demo user")),
      el("p", { class: "hint" }, "This sign-in link exists only in the local stack."));
  }
  box.hidden = false;
}

/** Run fn every ms while the page is visible; returns a function that stops it. */
export function every(ms, fn) {
  const id = setInterval(() => {
    if (document.visibilityState === "visible") fn();
  }, ms);
  return () => clearInterval(id);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
