// A real browser through the Google Calendar connect flow: Debian's Chromium
// (never a downloaded one), driven by playwright-core, on loopback only.
// test_connect_flow.py starts the servers and runs this with:
//
//   FRONTEND_URL  the page that plays the frontend (and the gateway's FRONTEND_URL)
//   STANDIN_URL   the Google stand-in, whose consent page the browser must reach
//   JWT           the platform's token for the user, which the page keeps in localStorage
//   GOOGLE_EMAIL  the Google account the stand-in's consent page proposes
//   OUTPUT_DIR    where the screenshots go
//   CHROMIUM      the browser (default /usr/bin/chromium)
//
// First the user presses Deny on Google's page and comes back with an error;
// then the user's consent URL is opened in someone else's browser, who
// allows access there and is refused (the connect is bound to the browser
// that asked for it); then the user presses Allow, and comes back connected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this through tests/browser/test_connect_flow.py`);
  return v;
};
const frontend = new URL(env("FRONTEND_URL"));
const standin = new URL(env("STANDIN_URL"));
const jwt = env("JWT");
const email = env("GOOGLE_EMAIL");
const output = env("OUTPUT_DIR");
// As the machine's notes ask: no sandbox (root in CI), no GPU, and nothing that calls home.
const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

const profiles = [];
let context;

async function launch() {
  const profile = mkdtempSync(path.join(tmpdir(), "gcal-chromium-"));
  profiles.push(profile);
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: flags,
    viewport: { width: 900, height: 640 },
  });
}

before(async () => {
  mkdirSync(output, { recursive: true });
  context = await launch();
  // The platform's login put the JWT into the frontend's storage; no other origin gets it.
  await context.addInitScript(({ origin, token }) => {
    if (window.location.origin === origin) window.localStorage.setItem("token", token);
  }, { origin: frontend.origin, token: jwt });
});

after(async () => {
  await context?.close();
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
});

async function startConnect(page) {
  await page.goto(frontend.href);
  await page.locator("#status", { hasText: "Not connected" }).waitFor();
  await page.getByRole("button", { name: "Connect Google Calendar" }).click();
  await page.waitForURL((u) => u.origin === standin.origin && u.pathname.startsWith("/o/oauth2/"));
  await page.screenshot({ path: path.join(output, "consent.png") });
}

test("Deny on Google's consent page comes back as an error", async () => {
  const page = await context.newPage();
  await startConnect(page);
  await page.getByRole("button", { name: "Deny" }).click();
  await page.waitForURL((u) => u.origin === frontend.origin && u.searchParams.get("google") === "error");
  assert.equal(new URL(page.url()).searchParams.get("reason"), "access_denied");
  await page.locator("#result", { hasText: "not connected: access_denied" }).waitFor();
  await page.locator("#status", { hasText: "Not connected" }).waitFor();
  await page.screenshot({ path: path.join(output, "denied.png") });
  await page.close();
});

test("A consent URL opened in another browser does not connect that person's account", async () => {
  // The user's page asks for the URL as the frontend does, but hands it on instead of following it.
  const page = await context.newPage();
  await page.goto(frontend.href);
  await page.locator("#status", { hasText: "Not connected" }).waitFor();
  const authUrl = await page.evaluate(async (token) => {
    const r = await fetch("/api/integrations/google/auth",
      { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } });
    return (await r.json()).authUrl;
  }, jwt);
  assert.ok(authUrl.startsWith(standin.origin), authUrl);

  const elsewhere = await launch();
  try {
    const other = await elsewhere.newPage();
    await other.goto(authUrl);
    await other.getByRole("button", { name: "Allow" }).click();
    await other.waitForURL((u) => u.origin === frontend.origin && u.searchParams.get("google") === "error");
    assert.equal(new URL(other.url()).searchParams.get("reason"), "invalid_state");
    await other.locator("#result", { hasText: "not connected: invalid_state" }).waitFor();
    await other.screenshot({ path: path.join(output, "other-browser.png") });
  } finally {
    await elsewhere.close();
  }
  await page.reload();
  await page.locator("#status", { hasText: "Not connected" }).waitFor();
  await page.close();
});

test("Allow on Google's consent page connects the calendar", async () => {
  const page = await context.newPage();
  await startConnect(page);
  await page.getByRole("button", { name: "Allow" }).click();
  await page.waitForURL((u) => u.origin === frontend.origin && u.searchParams.get("google") === "connected");
  await page.locator("#result", { hasText: "Google Calendar connected." }).waitFor();
  await page.locator("#status", { hasText: `Connected as ${email}` }).waitFor();
  await page.screenshot({ path: path.join(output, "connected.png") });
  await page.close();
});
