// The README's walk through the web UI, done by a browser on a running local
// stack (deploy/local/up), and the README's pictures taken on the way.
//
//   node tests/browser/ui-local-stack.mjs [--screenshots docs/screenshots]
//
// It does what the README tells a newcomer to do: open the sign-in link,
// connect Google Calendar on the stand-in's consent page, publish sample
// leads with gcalctl (as the platform's webhook would), watch the meetings
// appear, open one, reschedule it and cancel it; and a lead whose demo time
// had passed shows why it got no meeting. It stops at the first thing that
// does not look as the README says. Debian's Chromium, driven by
// playwright-core (tests/browser/package.json), which this script installs
// with `npm ci` in tests/browser the first time it is missing.
//
// GCAL_LOCAL_DIR (default /tmp/gcal-local) is the stack's state directory,
// whose services.env gcalctl needs; GATEWAY_PORT (default 8080) as for
// deploy/local/up; CHROMIUM (default /usr/bin/chromium).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * playwright-core from tests/browser/node_modules, installed there from the
 * lock file first when it is missing, so the README's one command works on
 * a fresh checkout.
 */
async function loadPlaywright() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  let resolved;
  try {
    resolved = require.resolve("playwright-core");
  } catch {
    process.stdout.write("- installing playwright-core (npm ci in tests/browser)\n");
    execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: here, stdio: "inherit" });
    resolved = require.resolve("playwright-core");
  }
  const mod = await import(pathToFileURL(resolved).href);
  return mod.chromium ? mod : mod.default;
}

const { chromium } = await loadPlaywright();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const state = process.env.GCAL_LOCAL_DIR || "/tmp/gcal-local";
const gateway = `http://127.0.0.1:${process.env.GATEWAY_PORT || 8080}`;
const demoUser = "00000000-0000-4000-8000-000000000001";
const i = process.argv.indexOf("--screenshots");
const pictures = i > 0 ? path.resolve(process.argv[i + 1]) : null;
const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

function step(text) {
  process.stdout.write(`- ${text}\n`);
}

async function picture(page, name) {
  if (!pictures) return;
  const dialog = await page.evaluate(() => !!document.querySelector("dialog[open]"));
  await page.screenshot({ path: path.join(pictures, name), fullPage: !dialog });
}

/** `gcalctl sample-lead` with the stack's settings; returns the lead's id. */
function sampleLead(email, at) {
  const out = execFileSync("bash", ["-c", '. "$1/services.env" && exec build/services/gcalctl/gcalctl sample-lead'
    + ' --user "$2" --email "$3" --at "$4"', "sample-lead", state, demoUser, email, at], { cwd: root }).toString();
  const m = /inserted sample lead ([0-9a-f-]{36})/.exec(out);
  assert.ok(m, out);
  return m[1];
}

/** Wall time in India (the stack's calendar zone), `days` from today at hh:mm, with its offset. */
function indiaTime(days, hh, mm = 0) {
  const d = new Date(Date.now() + days * 86400000);
  const ymd = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Kolkata", year: "numeric", month: "2-digit",
    day: "2-digit" }).format(d);
  return `${ymd}T${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}:00+05:30`;
}

const profile = mkdtempSync(path.join(tmpdir(), "gcal-ui-walk-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: flags,
  viewport: { width: 960, height: 720 }, locale: "en-GB", timezoneId: "Europe/London",
});
context.setDefaultTimeout(30000);
try {
  if (pictures) mkdirSync(pictures, { recursive: true });
  const page = context.pages()[0] || await context.newPage();

  step(`open ${gateway}/dev/sign-in`);
  await page.goto(`${gateway}/dev/sign-in`);
  await page.waitForURL(`${gateway}/`);
  const status = page.locator("#status");
  await status.filter({ hasText: /Connected|Not connected/ }).waitFor();
  if (await page.getByRole("button", { name: "Connect Google Calendar" }).isVisible()) {
    step("Connect Google Calendar, and Allow on the stand-in's consent page");
    await page.getByRole("button", { name: "Connect Google Calendar" }).click();
    await page.getByRole("button", { name: "Allow" }).click();
    await page.locator("#banner", { hasText: "Google Calendar is connected." }).waitFor();
  }
  await status.filter({ hasText: "Connected as" }).waitFor();

  step("publish two sample leads with gcalctl, and one whose demo time has passed");
  const first = sampleLead("ana.lopez@example.com", indiaTime(2, 15));
  sampleLead("sam.lee@example.com", indiaTime(3, 11, 30));
  const late = sampleLead("late.lead@example.com", indiaTime(-1, 15));

  step("wait for their meetings on the Integrations page (the scheduler waits 10 s)");
  const row = page.locator(`#meetings-table tbody tr:has(a[href="/leads/${first}"])`);
  const until = Date.now() + 60000;
  while (!(await row.count()) && Date.now() < until) {
    await page.getByRole("button", { name: "Refresh the meetings" }).click();
    await page.waitForTimeout(1000);
  }
  await row.waitFor();
  await picture(page, "integrations.png");

  step("open the first meeting's lead");
  await row.getByRole("link").click();
  await page.locator("#demo-status", { hasText: "Scheduled" }).waitFor();
  await picture(page, "lead.png");

  step("Reschedule it to the next day, 10:00 your time");
  await page.getByRole("button", { name: "Reschedule" }).click();
  const dialog = page.getByRole("dialog", { name: "Reschedule the demo" });
  const input = dialog.getByLabel("New date and time");
  const current = await input.inputValue();
  const next = new Date(`${current.slice(0, 10)}T12:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  await input.fill(`${next.toISOString().slice(0, 10)}T10:00`);
  await picture(page, "reschedule.png");
  await dialog.getByRole("button", { name: "Move the demo" }).click();
  await page.locator("#notice", { hasText: "The demo now starts" }).waitFor();
  assert.match(await page.locator("#demo-when").textContent(), /10:00/);

  step("Cancel it, with a reason");
  await page.getByRole("button", { name: "Cancel the demo" }).click();
  const cancel = page.getByRole("dialog", { name: "Cancel the demo?" });
  await cancel.getByLabel("Reason").fill("The lead asked to talk next quarter.");
  await cancel.getByRole("button", { name: "Cancel the demo" }).click();
  await page.locator("#demo-status", { hasText: "Cancelled" }).waitFor();
  await picture(page, "cancelled.png");

  step("back on Integrations the cancelled meeting is gone");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Integrations" }).click();
  await page.locator("#meetings-table tbody tr").first().waitFor();
  assert.equal(await row.count(), 0);

  step("the lead whose demo time had passed says why it got no meeting");
  await page.goto(`${gateway}/leads/${late}`);
  await page.locator("#demo-summary", { hasText: "had already passed" }).waitFor();
  await picture(page, "lead-no-demo.png");

  step("and on a phone's width");
  await page.setViewportSize({ width: 375, height: 760 });
  await page.goto(`${gateway}/`);
  await page.locator("#meetings-table tbody tr").first().waitFor();
  await picture(page, "phone.png");
  step(pictures ? `done; pictures in ${pictures}` : "done");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
