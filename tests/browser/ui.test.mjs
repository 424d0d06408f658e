// The gateway's own web UI, clicked through in Debian's headless Chromium
// (never a downloaded browser) with playwright-core, on loopback only.
// test_ui.py starts the servers, seeds the leads and runs this with:
//
//   GATEWAY_URL         the oauth-gateway (WEB_UI on, WEB_UI_DEV_USER = USER_ID)
//   STANDIN_URL         the Google stand-in (consent page, /_standin/ admin API)
//   GOOGLE_EMAIL        the Google account the consent page proposes
//   USER_ID             the demo user
//   LEAD_MOVED, LEAD_KEPT, LEAD_SKIPPED   leads with a demo time, another, and one without
//   LEAD_CLASH, LEAD_CLASH_AT             a lead whose demo time (RFC 3339) the rep is busy at
//   RABBIT_PUBLISH_URL, RABBIT_AUTH       RabbitMQ's management API, to publish lead.analyzed
//   DATABASE_URL        the test's database, where a step writes what the two-way sync would (psql)
//   OUTPUT_DIR          where each step's screenshot goes
//   CHROMIUM            the browser (default /usr/bin/chromium)
//
// The steps run in order on one signed-in browser, as a user would click
// them; each leaves a screenshot named after it. The viewer sits in Berlin
// while the calendar is in India, so every time on screen has to be the
// viewer's own.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this through tests/browser/test_ui.py`);
  return v;
};
const gateway = env("GATEWAY_URL").replace(/\/$/, "");
const standin = env("STANDIN_URL").replace(/\/$/, "");
const googleEmail = env("GOOGLE_EMAIL");
const userId = env("USER_ID");
const leads = { moved: env("LEAD_MOVED"), kept: env("LEAD_KEPT"), skipped: env("LEAD_SKIPPED"),
  clash: env("LEAD_CLASH") };
// The rep's own "Board meeting" covers the clash lead's demo time, for two hours.
const busyStart = new Date(env("LEAD_CLASH_AT"));
const busyEnd = new Date(busyStart.getTime() + 2 * 3600000);
const output = env("OUTPUT_DIR");
const ZONE = "Europe/Berlin";
const LOCALE = "en-GB";
// As the machine's notes ask: no sandbox (root in CI), no GPU, and nothing that calls home.
const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

let profile;
let context;
let page;
const problems = [];

before(async () => {
  mkdirSync(output, { recursive: true });
  profile = mkdtempSync(path.join(tmpdir(), "gcal-ui-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: flags,
    viewport: { width: 960, height: 720 },
    locale: LOCALE,
    timezoneId: ZONE,
  });
  context.setDefaultTimeout(20000);
  page = context.pages()[0] || await context.newPage();
  watch(page);
});

// A page that throws, or a file the CSP blocks, is a bug even when the clicks still work. Answers
// the steps provoke on purpose (401 signed out, 409 busy, 502 refused) are logged by Chromium and expected.
function watch(p) {
  const ours = () => p.url().startsWith(gateway + "/");
  p.on("pageerror", (e) => problems.push(`${p.url()}: ${e.message}`));
  p.on("console", (m) => {
    if (ours() && m.type() === "error" && !/status of (401|409|502)/.test(m.text())) {
      problems.push(`${p.url()}: ${m.text()}`);
    }
  });
}

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function shot(name, p = page) {
  assert.deepEqual(problems, [], "errors in the page");
  const file = path.join(output, `${name}.png`);
  // A modal's backdrop covers the viewport only: a dialog is pictured as the user sees it.
  const dialog = await p.evaluate(() => !!document.querySelector("dialog[open]"));
  await p.screenshot({ path: file, fullPage: !dialog });
}

/** Every control on the page has a name a screen reader can read out. */
async function assertLabelled(p = page) {
  const nameless = await p.evaluate(() => [...document.querySelectorAll("button, input, textarea, select, a[href]")]
    .filter((e) => {
      const labels = e.labels ? [...e.labels].map((l) => l.textContent).join(" ") : "";
      return !(labels || e.getAttribute("aria-label") || e.textContent || "").trim();
    }).map((e) => e.outerHTML));
  assert.deepEqual(nameless, [], "controls without a label");
}

async function publish(lead) {
  const [user, pass] = env("RABBIT_AUTH").split(":");
  const res = await fetch(env("RABBIT_PUBLISH_URL"), {
    method: "POST",
    headers: { Authorization: "Basic " + Buffer.from(`${user}:${pass}`).toString("base64"),
      "Content-Type": "application/json" },
    body: JSON.stringify({
      properties: { delivery_mode: 2, content_type: "application/json", message_id: `ui-test-${lead}` },
      routing_key: "lead.analyzed",
      payload: JSON.stringify({ lead_analytics_id: lead, user_id: userId }),
      payload_encoding: "string",
    }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(JSON.parse(text).routed, true, "lead.analyzed was routed");
}

async function standinEvent(attendee) {
  const res = await fetch(`${standin}/_standin/events?email=${encodeURIComponent(googleEmail)}`);
  const { events } = await res.json();
  return events.find((e) => (e.attendees || []).some((a) => a.email === attendee));
}

async function eventually(fn, what, ms = 20000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** The wall-clock time ("14:05") of an instant where the viewer sits. */
const clock = (date) => new Intl.DateTimeFormat(LOCALE, { timeZone: ZONE, hour: "2-digit", minute: "2-digit",
  hourCycle: "h23" }).format(date);

/** A datetime-local value `days` from today at hh:mm in the viewer's zone, and its instant. */
function berlinWallTime(days, hh, mm) {
  const day = new Date(Date.now() + days * 86400000);
  const ymd = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit",
    day: "2-digit" }).format(day);
  const value = `${ymd}T${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}`;
  // The zone's offset at that moment: try both of Berlin's and keep the one that reads back as hh:mm.
  for (const off of ["+01:00", "+02:00"]) {
    const instant = new Date(`${value}:00${off}`);
    if (clock(instant) === value.slice(11)) return { value, instant };
  }
  throw new Error(`no Berlin offset fits ${value}`);
}

/** An instant as the value of a datetime-local input in the viewer's zone. */
function berlinValue(date) {
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(date)
    .map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The rep adds an event of their own in Google's UI (the stand-in's admin API). */
async function busyEvent(summary, start, end) {
  const res = await fetch(`${standin}/_standin/events`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: googleEmail, event: { summary, start: { dateTime: start.toISOString() },
      end: { dateTime: end.toISOString() } } }),
  });
  assert.equal(res.status, 200, await res.text());
}

const rows = () => page.locator("#meetings-table tbody tr");

/**
 * Run SQL in the test's database with psql; vars become psql variables
 * (:'name' in the text quotes them). Answers the unaligned output.
 */
function sql(text, vars = {}) {
  const args = [env("DATABASE_URL"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"];
  for (const [k, v] of Object.entries(vars)) args.push("-v", `${k}=${v}`);
  return execFileSync("psql", args, { input: text, encoding: "utf8" }).trim();
}

test("signed out on a lead's page, the sign-in comes back to that lead", async () => {
  const leadPage = `${gateway}/leads/${leads.kept}?from=list`;
  await page.goto(leadPage);
  await page.getByRole("heading", { name: "You're not signed in" }).waitFor();
  await page.getByRole("link", { name: "Sign in as the demo user" }).click();
  await page.waitForURL(leadPage);
  await page.getByRole("heading", { name: "You're not signed in" }).waitFor({ state: "hidden" });
  // The helper goes only to a path on this site, whatever the link says.
  for (const next of ["//evil.example/", "https://evil.example/", "/\\evil.example/"]) {
    const res = await fetch(`${gateway}/dev/sign-in?next=${encodeURIComponent(next)}`, { redirect: "manual" });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/", next);
  }
  // Signed out again for the steps below.
  await context.clearCookies();
});

test("signed out, the page says so and offers the local stack's sign-in", async () => {
  await page.goto(gateway + "/");
  await page.getByRole("heading", { name: "You're not signed in" }).waitFor();
  await assertLabelled();
  await shot("01-signed-out");
  await page.getByRole("link", { name: "Sign in as the demo user" }).click();
  await page.waitForURL(gateway + "/");
  await page.locator("#status", { hasText: "Not connected" }).waitFor();
  assert.ok(await page.getByRole("button", { name: "Connect Google Calendar" }).isVisible());
  assert.equal(await page.getByRole("button", { name: "Disconnect" }).isVisible(), false);
  await assertLabelled();
  await shot("02-not-connected");
});

test("Connect Google Calendar goes through Google's consent page and comes back connected", async () => {
  // By keyboard: the button takes focus and Enter presses it.
  await page.getByRole("button", { name: "Connect Google Calendar" }).focus();
  await page.keyboard.press("Enter");
  await page.waitForURL((u) => u.href.startsWith(standin + "/o/oauth2/"));
  await shot("03-consent");
  await page.getByRole("button", { name: "Allow" }).click();
  await page.locator("#banner", { hasText: "Google Calendar is connected." }).waitFor();
  await page.locator("#status", { hasText: `Connected as ${googleEmail}` }).waitFor();
  // The outcome was announced once; the address no longer carries it.
  assert.equal(new URL(page.url()).search, "");
  assert.ok(await page.getByRole("button", { name: "Disconnect" }).isVisible());
  await shot("04-connected");
});

test("published leads' meetings appear in the list, in the viewer's time", async () => {
  await busyEvent("Board meeting", busyStart, busyEnd);
  for (const lead of Object.values(leads)) await publish(lead);
  await eventually(async () => {
    await page.getByRole("button", { name: "Refresh the meetings" }).click();
    return (await rows().count()) === 2;
  }, "two meetings in the list");
  const first = rows().nth(0);
  await first.getByRole("link", { name: "Priya Sharma + Acme Robotics + Demo" }).waitFor();
  assert.match(await first.textContent(), /priya@acme\.example/);
  assert.match(await first.textContent(), /Scheduled/);
  const iso = await first.locator("time").getAttribute("datetime");
  const shown = await first.locator("time").textContent();
  assert.ok(shown.includes(clock(new Date(iso))), `${shown} shows ${clock(new Date(iso))} (Berlin)`);
  assert.match(await page.locator("#when-head").textContent(), /Europe\/Berlin/);
  await assertLabelled();
  await shot("05-meetings");
});

test("a lead's page shows its demo", async () => {
  await rows().nth(0).getByRole("link").click();
  await page.waitForURL(`${gateway}/leads/${leads.moved}`);
  await page.getByRole("heading", { level: 1, name: "Priya Sharma + Acme Robotics + Demo" }).waitFor();
  await page.locator("#demo-status", { hasText: "Scheduled" }).waitFor();
  assert.match(await page.locator("#demo-attendee").textContent(), /Priya Sharma <priya@acme\.example>/);
  assert.ok(await page.getByRole("button", { name: "Reschedule" }).isVisible());
  await assertLabelled();
  await shot("06-lead");
});

let movedTo;

test("Reschedule moves the demo, on the page and in Google Calendar", async () => {
  movedTo = berlinWallTime(4, 10, 30);
  await page.getByRole("button", { name: "Reschedule" }).focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Reschedule the demo" });
  await dialog.waitFor();
  const input = dialog.getByLabel("New date and time");
  assert.ok(await input.evaluate((e) => e === document.activeElement), "the picker has the focus");
  assert.match(await dialog.textContent(), /Europe\/Berlin/);
  // Around Berlin's clock changes next year (the last Sundays of March and October), a time the clocks skip
  // or pass twice is explained before anything is sent.
  const year = new Date().getUTCFullYear() + 1;
  const lastSunday = (month) => {
    const d = new Date(Date.UTC(year, month, 31));
    return `${year}-${String(month + 1).padStart(2, "0")}-${String(31 - d.getUTCDay()).padStart(2, "0")}`;
  };
  const before = await page.locator("#demo-when").getAttribute("datetime");
  const errorArea = dialog.locator("#reschedule-error");
  await input.fill(`${lastSunday(2)}T02:30`);
  await input.press("Enter");
  await errorArea.filter({ hasText: "02:30 doesn't exist" }).waitFor();
  assert.match(await errorArea.textContent(), /clocks jump forward.*03:30/);
  await shot("07a-reschedule-skipped-time");
  await input.fill(`${lastSunday(9)}T02:30`);
  await input.press("Enter");
  await errorArea.filter({ hasText: "02:30 happens twice" }).waitFor();
  assert.match(await errorArea.textContent(), /clocks go back.*CEST.*CET/);
  assert.ok(await dialog.isVisible(), "the dialog waits for the user");
  assert.equal(await page.locator("#demo-when").getAttribute("datetime"), before, "nothing was sent");
  await input.fill(movedTo.value);
  await shot("07-reschedule-dialog");
  await input.press("Enter");
  await page.locator("#notice", { hasText: "The demo now starts" }).waitFor();
  await dialog.waitFor({ state: "hidden" });
  const when = page.locator("#demo-when");
  assert.equal(new Date(await when.getAttribute("datetime")).getTime(), movedTo.instant.getTime());
  assert.ok((await when.textContent()).includes("10:30"), await when.textContent());
  await page.locator("#history", { hasText: "Moved to a new time" }).waitFor();
  // Each history row says when it happened (the move: just now), then the demo time it concerns.
  const moved = page.locator("#history li", { hasText: "Moved to a new time" });
  const [at, demoAt] = await moved.locator("time").evaluateAll((ts) => ts.map((t) => t.getAttribute("datetime")));
  assert.ok(Math.abs(Date.now() - new Date(at).getTime()) < 5 * 60 * 1000, `moved at ${at}, not just now`);
  assert.ok(new Date(demoAt).getTime() !== movedTo.instant.getTime() && new Date(demoAt) > new Date(at),
    `the moved row names the old demo time: ${demoAt}`);
  const booked = page.locator("#history li", { hasText: "Booked" });
  assert.equal(new Date(await booked.locator("time").nth(1).getAttribute("datetime")).getTime(),
    movedTo.instant.getTime());
  await shot("08-rescheduled");
  const ev = await eventually(async () => {
    const e = await standinEvent("priya@acme.example");
    return e && new Date(e.start.dateTime).getTime() === movedTo.instant.getTime() ? e : null;
  }, "the stand-in's event to move");
  assert.equal(ev.status, "confirmed");
});

async function fault(rules) {
  const res = await fetch(`${standin}/_standin/faults`, rules ? { method: "POST", body: JSON.stringify({ rules }),
    headers: { "Content-Type": "application/json" } } : { method: "DELETE" });
  assert.equal(res.status, 200, await res.text());
}

test("when Google is slow the page says Saving… and shows the new time once it lands", async () => {
  // Longer than the gateway waits for the scheduler (8 s): the answer is 202 and the change lands later.
  await fault([{ method: "PATCH", path_prefix: "/calendar/v3/", latency_ms: 11000, count: 1 }]);
  const later = berlinWallTime(4, 14, 0);
  await page.getByRole("button", { name: "Reschedule" }).click();
  const dialog = page.getByRole("dialog", { name: "Reschedule the demo" });
  await dialog.getByLabel("New date and time").fill(later.value);
  await dialog.getByRole("button", { name: "Move the demo" }).click();
  await page.locator("#notice", { hasText: "Saving…" }).waitFor();
  await shot("08b-saving");
  await page.locator("#notice", { hasText: "The demo now starts" }).waitFor({ timeout: 40000 });
  assert.equal(new Date(await page.locator("#demo-when").getAttribute("datetime")).getTime(),
    later.instant.getTime());
  await shot("08c-saved");
  await fault(null);
  movedTo = later;
});

test("a change Google refuses is explained and changes nothing", async () => {
  await fault([{ method: "PATCH", path_prefix: "/calendar/v3/", status: 400, count: 1 }]);
  await page.getByRole("button", { name: "Reschedule" }).click();
  const dialog = page.getByRole("dialog", { name: "Reschedule the demo" });
  await dialog.getByLabel("New date and time").fill(berlinWallTime(6, 9, 0).value);
  await dialog.getByRole("button", { name: "Move the demo" }).click();
  await page.locator("#notice", { hasText: "Google Calendar refused the change" }).waitFor();
  assert.equal(new Date(await page.locator("#demo-when").getAttribute("datetime")).getTime(),
    movedTo.instant.getTime(), "the page still shows the time the server holds");
  await shot("09-refused");
  await fault(null);
});

test("a time in the past is refused in the dialog, in words", async () => {
  await page.getByRole("button", { name: "Reschedule" }).click();
  const dialog = page.getByRole("dialog", { name: "Reschedule the demo" });
  await dialog.getByLabel("New date and time").fill(berlinWallTime(-1, 9, 0).value);
  await dialog.getByRole("button", { name: "Move the demo" }).click();
  await dialog.getByRole("alert").filter({ hasText: "That time has already passed" }).waitFor();
  await shot("10-past-time");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
});

test("Cancel with a reason cancels the demo and takes it off the list", async () => {
  await page.getByRole("button", { name: "Cancel the demo" }).click();
  const dialog = page.getByRole("dialog", { name: "Cancel the demo?" });
  await dialog.getByLabel("Reason").fill("The lead asked to talk next quarter.");
  await shot("11-cancel-dialog");
  await dialog.getByRole("button", { name: "Cancel the demo" }).click();
  await page.locator("#notice", { hasText: "The demo is cancelled" }).waitFor();
  await page.locator("#demo-status", { hasText: "Cancelled" }).waitFor();
  await page.locator("#demo-summary", { hasText: "The lead asked to talk next quarter." }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Reschedule" }).isVisible(), false);
  await shot("12-cancelled");
  await eventually(async () => (await standinEvent("priya@acme.example"))?.status === "cancelled",
    "the stand-in's event to be cancelled");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Integrations" }).click();
  await page.waitForURL(gateway + "/");
  await page.getByRole("link", { name: "John Smith + TechCorp + Demo" }).waitFor();
  assert.equal(await rows().count(), 1);
  assert.equal(await page.getByRole("link", { name: "Priya Sharma + Acme Robotics + Demo" }).count(), 0);
  await shot("12-list-after-cancel");
});

test("a lead without a demo time says why no meeting was made", async () => {
  await page.goto(`${gateway}/leads/${leads.skipped}`);
  await page.locator("#demo-summary", { hasText: "The call didn't include a demo time." }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Reschedule" }).isVisible(), false);
  await shot("13-no-demo");
  await page.goto(`${gateway}/leads/not-a-lead`);
  await page.locator("#demo-summary", { hasText: "This link doesn't point to a lead." }).waitFor();
  await shot("13-not-a-lead");
});

test("a lead skipped for a clash says why; booking it shows the clash, and Book anyway books it", async () => {
  await page.goto(`${gateway}/leads/${leads.clash}`);
  await page.locator("#demo-summary", { hasText: "already busy at the demo time" }).waitFor({ timeout: 30000 });
  const busyNote = page.locator("#demo-conflict");
  // The busy part of the demo's slot, in the viewer's own time (Berlin), not the calendar's (India).
  const busyText = await busyNote.textContent();
  assert.ok(busyText.includes(clock(busyStart)), busyText);
  await assertLabelled();
  await shot("18-skipped-for-conflict");

  await page.getByRole("button", { name: "Book a demo" }).click();
  const dialog = page.getByRole("dialog", { name: "Book a demo" });
  await dialog.waitFor();
  const input = dialog.getByLabel("Date and time");
  assert.ok(await input.evaluate((e) => e === document.activeElement), "the picker has the focus");
  await input.fill(berlinValue(busyStart));
  await input.press("Enter");
  const clashBox = dialog.locator("#book-clash");
  await clashBox.filter({ hasText: "Your calendar is busy then." }).waitFor();
  assert.match(await clashBox.textContent(), /Nothing was booked/);
  assert.ok((await dialog.locator("#book-busy").textContent()).includes(clock(busyStart)),
    await dialog.locator("#book-busy").textContent());
  const anyway = dialog.getByRole("button", { name: "Book anyway" });
  assert.ok(await anyway.isVisible());
  assert.equal(await standinEvent("chen@initech.example"), undefined, "nothing was booked");
  await assertLabelled();
  await shot("19-book-clash");
  // Another time is another question: "Book anyway" goes until that one is checked.
  await input.fill(berlinValue(new Date(busyEnd.getTime() + 3600000)));
  assert.equal(await anyway.isVisible(), false, "Book anyway is about the time that clashed only");
  assert.equal(await clashBox.isVisible(), false);
  await input.fill(berlinValue(busyStart));
  await input.press("Enter");
  await clashBox.filter({ hasText: "Your calendar is busy then." }).waitFor();
  // A double click sends one request: the buttons wait while it runs.
  await anyway.dblclick();
  await page.locator("#notice", { hasText: "The demo is booked for" }).waitFor();
  assert.match(await page.locator("#notice").textContent(), /overlaps other events/);
  await dialog.waitFor({ state: "hidden" });
  await page.locator("#demo-status", { hasText: "Scheduled" }).waitFor();
  assert.equal(new Date(await page.locator("#demo-when").getAttribute("datetime")).getTime(), busyStart.getTime());
  await page.locator("#demo-conflict", { hasText: "Overlaps other events in your calendar" }).waitFor();
  assert.ok((await page.locator("#demo-conflict").textContent()).includes(clock(busyStart)));
  await shot("20-booked-anyway");
  const ev = await eventually(() => standinEvent("chen@initech.example"), "the booked event at the stand-in");
  assert.equal(new Date(ev.start.dateTime).getTime(), busyStart.getTime());
});

test("Reschedule into busy time shows the clash, and Move anyway moves it", async () => {
  await page.goto(`${gateway}/leads/${leads.kept}`);
  await page.locator("#demo-status", { hasText: "Scheduled" }).waitFor();
  assert.equal(await page.locator("#demo-conflict").isVisible(), false, "a free slot has no note");
  const target = new Date(busyStart.getTime() + 30 * 60000);
  await page.getByRole("button", { name: "Reschedule" }).click();
  const dialog = page.getByRole("dialog", { name: "Reschedule the demo" });
  await dialog.getByLabel("New date and time").fill(berlinValue(target));
  await dialog.getByRole("button", { name: "Move the demo" }).click();
  await dialog.locator("#reschedule-clash", { hasText: "Nothing was moved" }).waitFor();
  assert.ok((await dialog.locator("#reschedule-busy").textContent()).includes(clock(target)));
  await shot("21-reschedule-clash");
  await dialog.getByRole("button", { name: "Move anyway" }).click();
  await page.locator("#notice", { hasText: "The demo now starts" }).waitFor();
  assert.equal(new Date(await page.locator("#demo-when").getAttribute("datetime")).getTime(), target.getTime());
  await page.locator("#demo-conflict", { hasText: "Overlaps other events in your calendar" }).waitFor();
});

test("the meetings list notes a meeting that overlaps other events", async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Integrations" }).click();
  await page.waitForURL(gateway + "/");
  const row = rows().filter({ has: page.getByRole("link", { name: "Chen Wei + Initech + Demo" }) });
  await row.waitFor();
  assert.match(await row.textContent(), /Overlaps other events in your calendar/);
  await shot("22-list-overlap");
});

test("Your free time lists the free slots by day, around the busy time", async () => {
  const section = page.getByRole("region", { name: "Your free time" });
  await section.waitFor();
  const dayName = new Intl.DateTimeFormat(LOCALE, { timeZone: ZONE, weekday: "long", day: "numeric",
    month: "long" }).format(busyStart);
  const day = section.getByRole("list", { name: `Free on ${dayName}` });
  await day.waitFor();
  const slots = await day.getByRole("listitem").allTextContents();
  // The board meeting (with the two demos booked over it) leaves the day free before and after it.
  assert.ok(slots.some((t) => t.endsWith(`– ${clock(busyStart)}`)), `${slots} ends a slot at ${clock(busyStart)}`);
  assert.ok(slots.some((t) => t.startsWith(`${clock(busyEnd)} –`)), `${slots} starts a slot at ${clock(busyEnd)}`);
  assert.ok(!slots.some((t) => t.startsWith(`${clock(busyStart)} –`)), "no slot starts in the busy time");
  assert.match(await section.locator("#free-note").textContent(), /Europe\/Berlin/);
  assert.ok((await section.getByRole("heading", { level: 3 }).count()) >= 5, "a heading per day");
  await assertLabelled();
  await shot("23-free-time");
  // After another busy event, Refresh shows it.
  const lunchStart = new Date(busyEnd.getTime() + 3600000);
  await busyEvent("Lunch", lunchStart, new Date(lunchStart.getTime() + 3600000));
  await section.getByRole("button", { name: "Refresh your free time" }).click();
  await eventually(async () => (await day.getByRole("listitem").allTextContents())
    .some((t) => t.endsWith(`– ${clock(lunchStart)}`)), "the free time to end at lunch");
  // A longer minimum leaves out the hour between the board meeting and lunch.
  await section.getByLabel("At least").selectOption("90");
  await eventually(async () => !(await day.getByRole("listitem").allTextContents())
    .some((t) => t.startsWith(`${clock(busyEnd)} –`)), "the 60 free minutes to be too short for 90");
  await section.getByLabel("At least").selectOption("30");
  await shot("23b-free-time-refreshed");
});

// What the two-way sync writes after changes in Google Calendar (docs/sync.md), written here directly: the
// rep moved the clash lead's demo a day later there, and the lead answered; the other lead declined.
test("the lead's answer and the changes made in Google Calendar show on the pages", async () => {
  const movedAt = sql(`
    BEGIN;
    WITH old AS (
      UPDATE calendar_meetings SET status = 'rescheduled', change_source = 'google'
       WHERE lead_analytics_id = :'lead' AND status = 'scheduled' RETURNING *)
    INSERT INTO calendar_meetings (user_id, lead_analytics_id, call_id, contact_id, google_event_id,
      google_calendar_id, meeting_title, meeting_description, attendee_email, attendee_name, meeting_start_time,
      meeting_end_time, meeting_duration_minutes, timezone, status, rescheduled_from_meeting_id, ical_sequence,
      meet_link, html_link, change_source, attendee_response_status)
    SELECT user_id, lead_analytics_id, call_id, contact_id, google_event_id, google_calendar_id, meeting_title,
      meeting_description, attendee_email, attendee_name, meeting_start_time + interval '1 day',
      meeting_end_time + interval '1 day', meeting_duration_minutes, timezone, 'scheduled', id, ical_sequence + 1,
      meet_link, html_link, 'google', 'tentative' FROM old
    RETURNING to_char(meeting_start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
    UPDATE calendar_meetings SET attendee_response_status = 'declined', attendee_response_changes = 1
     WHERE lead_analytics_id = :'kept' AND status = 'scheduled';
    COMMIT;`, { lead: leads.clash, kept: leads.kept });
  assert.equal(new Date(movedAt).getTime(), busyStart.getTime() + 86400000, movedAt);

  await page.goto(gateway + "/");
  const chen = rows().filter({ has: page.getByRole("link", { name: "Chen Wei + Initech + Demo" }) });
  const john = rows().filter({ has: page.getByRole("link", { name: "John Smith + TechCorp + Demo" }) });
  await chen.locator(".badge.answer", { hasText: "Maybe (tentative)" }).waitFor();
  assert.equal(await chen.locator("time").getAttribute("datetime"), movedAt, "the time the rep moved it to");
  const declined = john.locator(".badge.answer.declined");
  assert.equal(await declined.textContent(), "Invitation: ✕ Declined");
  assert.equal(await declined.evaluate((e) => getComputedStyle(e).color), "rgb(140, 29, 24)", "declined stands out");
  assert.equal(await rows().count(), 2, "the moved demo is listed once, at its new time");
  await assertLabelled();
  await shot("24-list-answers");

  await chen.getByRole("link").click();
  await page.waitForURL(`${gateway}/leads/${leads.clash}`);
  await page.locator("#demo-summary", { hasText: "Moved to this time in your Google Calendar." }).waitFor();
  assert.equal(await page.locator("#demo-when").getAttribute("datetime"), movedAt);
  assert.match(await page.locator("#demo-attendee").textContent(), /Chen Wei <chen@initech\.example> Invitation: Maybe \(tentative\)/);
  const history = await page.locator("#history li").allTextContents();
  assert.equal(history.length, 2, history.join(" | "));
  assert.match(history[0], /Moved in Google Calendar \(was /, "the row the move ended");
  assert.match(history[1], /Moved in Google Calendar \(for /, "the row the move made");
  assert.equal(await page.locator("#demo-declined").isVisible(), false, "a maybe is no decline");
  await shot("25-moved-in-google");
  // Every answer Google knows, in words; none before the first sync has seen the event.
  for (const [answer, words] of [["accepted", "Accepted"], ["needsAction", "No answer yet"], [null, null],
    ["tentative", "Maybe (tentative)"]]) {
    sql("UPDATE calendar_meetings SET attendee_response_status = NULLIF(:'answer', '') WHERE lead_analytics_id ="
      + " :'lead' AND status = 'scheduled'", { answer: answer || "", lead: leads.clash });
    await page.reload();
    await page.locator("#demo-attendee", { hasText: "Chen Wei" }).waitFor();
    const badge = page.locator("#demo-attendee .badge.answer");
    if (words) assert.equal(await badge.textContent(), `Invitation: ${words}`);
    else assert.equal(await badge.count(), 0, "no answer known: nothing shown");
  }

  await page.goto(`${gateway}/leads/${leads.kept}`);
  const note = page.locator("#demo-declined");
  await note.filter({ hasText: "The lead declined the invitation." }).waitFor();
  assert.match(await note.textContent(), /stays in your calendar until you decide: reschedule it .*or cancel it/);
  assert.match(await page.locator("#demo-attendee").textContent(), /John Smith <john@techcorp\.example> Invitation: ✕ Declined/);
  assert.ok(await page.getByRole("button", { name: "Reschedule" }).isVisible(), "still scheduled: the owner decides");
  await assertLabelled();
  await shot("26-declined");

  // The lead without a demo time: the rep's demo with them, deleted in Google Calendar. Its texts are the call's:
  // they reach the page as text.
  sql(`INSERT INTO calendar_meetings (user_id, lead_analytics_id, google_event_id, google_calendar_id, meeting_title,
      attendee_email, attendee_name, meeting_start_time, meeting_end_time, meeting_duration_minutes, timezone,
      status, cancellation_reason, change_source, attendee_response_status)
    VALUES (:'user', :'lead', 'uideleted0', 'primary', 'Maria Garcia + Globex + Demo', 'maria@globex.example',
      '<img src=x onerror=alert(1)> Maria', now() + interval '3 days', now() + interval '3 days 30 minutes', 30,
      'Asia/Kolkata', 'cancelled', 'Deleted in Google Calendar', 'google', 'accepted')`,
  { user: userId, lead: leads.skipped });
  await page.goto(`${gateway}/leads/${leads.skipped}`);
  await page.locator("#demo-summary", { hasText: "Deleted in Google Calendar." }).waitFor();
  assert.equal(await page.locator("#demo-words").textContent(), "Deleted in Google Calendar.", "the reason only once");
  assert.match(await page.locator("#history").textContent(), /Deleted in Google Calendar \(was /);
  assert.match(await page.locator("#demo-attendee").textContent(), /^<img src=x onerror=alert\(1\)> Maria/);
  assert.equal(await page.locator("#demo img").count(), 0, "no markup from the data");
  assert.ok(await page.getByRole("button", { name: "Book a demo" }).isVisible(), "a deleted demo can be booked again");
  await shot("27-deleted-in-google");
});

test("on a phone's width every page fits and stays usable", async () => {
  const phone = await context.newPage();
  watch(phone);
  await phone.setViewportSize({ width: 375, height: 740 });
  for (const [name, url, ready] of [
    ["14-phone-integrations", "/", "#free-days li"],
    ["15-phone-lead", `/leads/${leads.kept}`, "#demo-when"],
  ]) {
    await phone.goto(gateway + url);
    await phone.locator(ready).first().waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${url} scrolls sideways by ${overflow}px on a phone`);
    await assertLabelled(phone);
    await shot(name, phone);
  }
  await phone.close();
});

test("Disconnect asks first, then disconnects", async () => {
  await page.goto(gateway + "/");
  await page.getByRole("button", { name: "Disconnect" }).click();
  const dialog = page.getByRole("dialog", { name: "Disconnect Google Calendar?" });
  await dialog.waitFor();
  await shot("16-disconnect-dialog");
  await dialog.getByRole("button", { name: "Disconnect" }).click();
  await page.locator("#status", { hasText: "Not connected" }).waitFor();
  await page.locator("#banner", { hasText: "Google Calendar is disconnected." }).waitFor();
  // The meetings made while connected are still in the calendar, and still listed; the free time is not asked.
  assert.equal(await rows().count(), 2);
  assert.equal(await page.getByRole("region", { name: "Your free time" }).isVisible(), false);
  await shot("17-disconnected");
});
