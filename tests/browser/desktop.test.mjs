// The desktop app end to end, as a parent uses it: the real Tauri window
// (tauri-driver + WebKitWebDriver, under Xvfb), a real cloud process over
// TLS, real simulated watches, a real Secret Service keychain, and sign-in in
// headless Chromium with a virtual authenticator (WAYMARK_BROWSER).
//
// Run through scripts/test-desktop, which provides the display and keychain.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startCloud } from "./cloud.mjs";
import { setUpFamily } from "./family.mjs";
import { WebDriver } from "./webdriver.mjs";

const here = import.meta.dirname;
const bin = resolve(process.env.WAYMARK_BIN_DIR || join(here, "../../target/debug"));
const CLOUD = join(bin, "waymark-cloud");
const WATCH = join(bin, "waymark-watch");
const APP = join(bin, "waymark");
const shots = resolve(process.env.WAYMARK_SCREENSHOTS || join(here, "../../screenshots/desktop"));
const DRIVER_PORT = Number(process.env.WAYMARK_DRIVER_PORT || 4444);

const work = mkdtempSync(join(tmpdir(), "waymark-desktop-"));
const children = [];
let cloud;
let driver;
let app;
const watches = [];

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: "utf8" });
}

/** A watch made like at the factory: key, CSR, signed certificate. */
function makeWatch(factory, n) {
  const dir = join(work, `watch-${n}`);
  run(WATCH, ["provision", "--dir", dir, "--cloud", cloud.origin, "--cloud-ca", join(cloud.dir, "ca/ca.pem")]);
  run(CLOUD, ["factory", "sign", "--dir", factory, "--csr", join(dir, "device.csr"), "--serial", `E2E-000${n}`,
    "--model", "Waymark Kids 1", "--out", join(work, `cert-${n}.pem`)]);
  run(WATCH, ["install-cert", "--dir", dir, "--cert", join(work, `cert-${n}.pem`)]);
  return dir;
}

function pairingCode(dir) {
  const out = run(WATCH, ["pair", "--dir", dir, "--no-wait"]);
  const m = out.match(/^PAIRING CODE: (\S+)$/m);
  assert.ok(m, `the watch printed no code: ${out}`);
  return m[1];
}

function walk(dir, route) {
  const child = spawn(WATCH, ["run", "--dir", dir, "--route", route, "--interval", "1"], { stdio: "ignore" });
  children.push(child);
  return child;
}

async function shot(name) {
  writeFileSync(join(shots, `${name}.png`), await driver.screenshot());
}

before(async () => {
  for (const p of [CLOUD, WATCH, APP]) assert.ok(existsSync(p), `${p} is missing: build the workspace first`);
  mkdirSync(shots, { recursive: true });
  const factory = join(work, "factory");
  run(CLOUD, ["factory", "init", "--dir", factory]);
  cloud = await startCloud(CLOUD, { env: { WAYMARK_MANUFACTURER_CAS: join(factory, "manufacturer-ca.pem") } });
  const passkeyFile = join(work, "family-passkey.json");
  const serverCert = join(cloud.dir, "tls/server.pem");
  for (const n of [1, 2, 3]) watches.push({ dir: makeWatch(factory, n) });

  // The family exists with two watches before the app is first opened.
  const family = await setUpFamily({
    origin: cloud.origin, caPath: join(cloud.dir, "ca/ca.pem"), serverCert, passkeyFile,
    name: "Rivera family", codes: [pairingCode(watches[0].dir), pairingCode(watches[1].dir)],
  });
  assert.equal(family.length, 2);
  walk(watches[0].dir, "builtin:park-loop");
  walk(watches[1].dir, "builtin:school-run");

  driver = spawn("tauri-driver", ["--port", String(DRIVER_PORT), "--native-port", String(DRIVER_PORT + 1)], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      WAYMARK_CLOUD: cloud.origin,
      WAYMARK_CA: join(cloud.dir, "ca/ca.pem"),
      WAYMARK_BROWSER: `node ${join(here, "sign-in-browser.mjs")}`,
      WAYMARK_PASSKEY_FILE: passkeyFile,
      WAYMARK_SERVER_CERT: serverCert,
      WAYMARK_BROWSER_LOG: join(work, "browser.log"),
      WAYMARK_KEYCHAIN_SERVICE: "waymark-e2e",
      WAYMARK_SESSION_NAME: "Kitchen laptop",
      // No WEBKIT_DISABLE_COMPOSITING_MODE: with it, WebKitWebDriver's screenshots never return.
    },
  });
  children.push(driver);
  const base = `http://127.0.0.1:${DRIVER_PORT}`;
  await new WebDriver(base, null).until(async () => (await fetch(`${base}/status`)).ok, { what: "tauri-driver", timeout: 30_000 });
  app = await WebDriver.start(base, APP);
  driver.session = app;
  driver.screenshot = () => app.screenshot();
});

after(async () => {
  if (app) await app.quit().catch(() => {});
  for (const c of children) c.kill("SIGTERM");
  if (cloud) await cloud.stop();
  console.log(`desktop screenshots: ${shots}`);
});

test("a parent signs in, sees two watches, pairs a third live, revokes it and ends the session", async () => {
  // 1. Sign in: the app opens its sign-in page in the (test) browser and waits.
  await app.waitFor("#sign-in", { what: "the sign-in screen" });
  await shot("01-sign-in");
  await app.click("#sign-in");
  await app.waitFor("#tab-watches", { timeout: 60_000, what: "the signed-in screen" });

  // The window's own limits: a command the capabilities do not grant, HTTP
  // from the page and navigation away are all refused; its own command works.
  const probe = await app.execAsync(`
    const done = arguments[arguments.length - 1];
    const inv = window.__TAURI_INTERNALS__.invoke;
    const outcome = (p) => p.then(() => "allowed", (e) => "refused: " + String(e && (e.message || e)));
    Promise.all([
      outcome(inv("plugin:opener|open_url", { url: "https://example.com/" })),
      outcome(fetch("https://example.com/")),
      outcome(inv("app_config")),
    ]).then(done);`);
  assert.match(probe[0], /^refused/, `opener from the page: ${probe[0]}`);
  assert.match(probe[1], /^refused/, `fetch from the page: ${probe[1]}`);
  assert.equal(probe[2], "allowed");
  await app.exec("window.location.href = 'https://example.com/'; return null;");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await app.exec("return window.location.origin;"), "tauri://localhost", "the window stays on the app");

  // 2. Two watches in the list and on the map, reporting.
  await app.until(async () => (await app.count("li.watch")) === 2, { what: "two watches in the list" });
  await app.until(async () => (await app.count(".leaflet-tooltip.watch-label")) === 2, { what: "two markers on the map" });
  await app.until(async () => (await app.count("li.watch[data-state='reporting']")) === 2, { what: "both reporting" });
  const names = await app.exec("return [...document.querySelectorAll('li.watch .name')].map(e => e.textContent);");
  assert.equal(names.length, 2);
  await shot("02-watches-map");

  // 3. Pair the third watch with the code it printed, typed loosely.
  const third = watches[2].dir;
  const ids = () => app.exec("return [...document.querySelectorAll('li.watch')].map(l => l.dataset.watchId);");
  const before = await ids();
  const code = pairingCode(third);
  await app.click("#tab-pair");
  await app.type("#pair-code", code.toLowerCase().replaceAll("-", " "));
  await app.click("#pair-submit");
  await app.waitFor("#pair-done", { what: "the pairing confirmation" });
  await shot("03-paired");
  // 4. The watch starts walking; its fix appears live on the map.
  const walker = walk(third, "builtin:harbour-walk");
  await app.waitFor("li.watch", { what: "the watch list" });
  await app.until(async () => (await app.count("li.watch")) === 3, { what: "three watches in the list" });
  await app.until(async () => (await app.count(".leaflet-tooltip.watch-label")) === 3, { timeout: 45_000, what: "the third marker (a live fix)" });
  await app.until(async () => (await app.count("li.watch[data-state='reporting']")) === 3, { what: "three reporting" });
  await shot("04-third-watch-live");

  // 5. History of the first watch: a trail with a scrubber.
  const firstId = await app.exec("return document.querySelector('li.watch').dataset.watchId;");
  await app.click(`li.watch[data-watch-id='${firstId}'] .actions button:first-child`);
  await app.waitFor("#history-summary", { what: "a trail" });
  await app.until(async () => (await app.count("path.leaflet-interactive")) >= 1, { what: "the trail line" });
  await shot("05-history");
  await app.click("#tab-watches");

  // 6. Revoke the third watch, deleting its history: it leaves the list, the watch erases itself.
  const exited = new Promise((r) => walker.once("exit", (code) => r(code)));
  const target = (await ids()).find((id) => !before.includes(id));
  assert.ok(target, "the paired watch is in the list");
  await app.click(`li.watch[data-watch-id='${target}'] .danger-link`);
  await app.waitFor("#confirm-revoke", { what: "the revoke confirmation" });
  const question = await app.text("#revoke-title");
  assert.match(question, /^Revoke .+\?$/);
  await app.click("#revoke-delete-history");
  await shot("06-revoke-confirm");
  await app.click("#confirm-revoke");
  await app.until(async () => (await app.count("li.watch")) === 2, { what: "the revoked watch to leave the list" });
  await app.until(async () => (await app.count(".leaflet-tooltip.watch-label")) === 2, { what: "its marker to go" });
  assert.equal(await exited, 3, "the revoked watch stops with exit code 3");
  await shot("07-revoked");

  // 7. Account: this computer's session is listed; ending it returns to sign-in.
  await app.click("#tab-account");
  await app.waitFor("#sessions tr[data-current='true']", { what: "the session list" });
  const sessionName = await app.text("#sessions tr[data-current='true'] td");
  assert.match(sessionName, /Kitchen laptop/);
  await app.waitFor("#activity li[data-kind='watch.revoked']", { what: "the revocation in the activity log" });
  assert.match(await app.text("#activity li[data-kind='watch.revoked']"), /by Kitchen laptop/);
  await shot("08-account");
  await app.click("#sessions tr[data-current='true'] .end-session");
  await app.waitFor("#sign-in", { what: "the sign-in screen after ending the session" });
  await shot("09-signed-out");

  // The keychain entry is gone (real Secret Service, looked up with secret-tool).
  let kept = "";
  try {
    kept = execFileSync("secret-tool", ["lookup", "service", "waymark-e2e", "username", cloud.origin], { encoding: "utf8" });
  } catch {
    kept = "";
  }
  assert.equal(kept, "", "no refresh token is left in the keychain");
});
