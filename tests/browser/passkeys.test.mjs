// Passkeys through the real cloud pages, in Debian's headless Chromium with
// the DevTools WebAuthn virtual authenticator (ctap2, internal, resident
// keys, user verification): create an account, sign in again with no user
// name, return to a loopback listener, exchange the code; and show that a
// page on another origin cannot complete a ceremony; add a second passkey
// through the enrolment page, which only the confirming page can finish.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { launchWithAuthenticator } from "./chromium.mjs";
import { startCloud } from "./cloud.mjs";
import { loopback } from "./loopback.mjs";

const binary = process.env.WAYMARK_CLOUD_BIN || resolve("../../target/debug/waymark-cloud");
let cloud, context, page, cdp, authenticatorId;

before(async () => {
  cloud = await startCloud(binary);
  ({ context, page, cdp, authenticatorId } = await launchWithAuthenticator(cloud.spki));
});

after(async () => {
  await context?.close();
  await cloud?.stop();
});

async function exchange(lb, session) {
  const back = await lb.arrived;
  // Let the browser finish landing on the loopback page before anything navigates again.
  await page.waitForURL((u) => u.href.startsWith(lb.redirectUri));
  assert.equal(back.path, "/callback");
  assert.equal(back.state, lb.state, "state comes back unchanged");
  assert.ok(back.code, "a one-time code");
  const res = await cloud.request("POST", "/token", {
    form: {
      grant_type: "authorization_code",
      code: back.code,
      redirect_uri: lb.redirectUri,
      client_id: "waymark-desktop",
      code_verifier: lb.verifier,
      session_name: session,
    },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.match(res.body.access_token, /^wm_at_/);
  return res.body;
}

let accountId;
let secondSession;

test("create an account with a passkey through the real pages", async () => {
  const lb = await loopback();
  await page.goto(cloud.origin + lb.authorizePath);
  await page.click("#create summary");
  await page.fill("#display-name", "Browser Parent");
  await page.click("#register");
  const tokens = await exchange(lb, "Chromium test");
  await lb.close();
  const me = await cloud.request("GET", "/api/v1/me", { token: tokens.access_token });
  assert.equal(me.status, 200);
  assert.equal(me.body.display_name, "Browser Parent");
  accountId = me.body.account_id;
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, "the passkey is discoverable");
});

test("sign in again without typing a user name", async () => {
  assert.ok(accountId, "needs the account from the previous test");
  const lb = await loopback();
  await page.goto(cloud.origin + lb.authorizePath);
  await page.click("#sign-in");
  const tokens = await exchange(lb, "Chromium again");
  secondSession = tokens;
  await lb.close();
  const me = await cloud.request("GET", "/api/v1/me", { token: tokens.access_token });
  assert.equal(me.body.account_id, accountId, "found the account from the passkey alone");
  const sessions = await cloud.request("GET", "/api/v1/sessions", { token: tokens.access_token });
  assert.deepEqual(sessions.body.map((s) => s.name), ["Chromium test", "Chromium again"]);
});

test("a page on another origin cannot complete a ceremony", async () => {
  const lb = await loopback();
  // Same server, other origin: https://127.0.0.1:PORT is not https://localhost:PORT.
  const otherOrigin = `https://127.0.0.1:${cloud.port}`;
  await page.goto(otherOrigin + lb.authorizePath);
  await page.click("#sign-in");
  await page.waitForFunction(() => document.getElementById("ceremony").dataset.lastError);
  const refused = await page.evaluate(() => document.getElementById("ceremony").dataset.lastError);
  assert.equal(refused, "wrong_origin", "the cloud refuses the other origin's ceremony");
  assert.match(await page.textContent("#status"), /Waymark sign-in page/);

  // And the browser itself refuses to use the localhost passkey there.
  const browserSays = await page.evaluate(async () => {
    try {
      await navigator.credentials.get({
        publicKey: { challenge: new Uint8Array(32), rpId: "localhost", userVerification: "required" },
      });
      return "allowed";
    } catch (e) {
      return e.name;
    }
  });
  assert.equal(browserSays, "SecurityError");

  const outcome = await Promise.race([lb.arrived.then(() => "redirected"), new Promise((r) => setTimeout(() => r("no redirect"), 500))]);
  assert.equal(outcome, "no redirect");
  await lb.close();

  // The honest origin still works in the same browser.
  const honest = await loopback();
  await page.goto(cloud.origin + honest.authorizePath);
  await page.click("#sign-in");
  await exchange(honest, "Chromium honest");
  await honest.close();
});

test("add a second passkey through the enrolment page; the link alone adds nothing", async () => {
  assert.ok(secondSession, "needs the sign-in from an earlier test");
  const token = secondSession.access_token;
  const link = await cloud.request("POST", "/api/v1/passkeys/enrollments", { token });
  assert.equal(link.status, 201, JSON.stringify(link.body));
  const requestId = new URL(link.body.url).searchParams.get("request");
  await page.goto(link.body.url);
  // Confirm with the existing passkey (the page holds the secret it gets in memory).
  await page.click("#verify");
  await page.waitForFunction(() => document.getElementById("ceremony").dataset.verified === "true");
  // Someone else with the same link, without the page's secret: refused.
  const intruder = await cloud.request("POST", "/ceremony/register/start", {
    json: { request_id: requestId },
    origin: cloud.origin,
  });
  assert.equal(intruder.status, 400, JSON.stringify(intruder.body));
  // The new passkey lives on another authenticator (this one already holds the account's).
  const { authenticatorId: second } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "usb",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId });
  await page.click("#add");
  await page.waitForFunction(() => document.getElementById("ceremony").dataset.done === "true");
  assert.match(await page.textContent("#status"), /Passkey added/);
  const passkeys = await cloud.request("GET", "/api/v1/passkeys", { token });
  assert.equal(passkeys.body.length, 2);
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId: second });
  assert.equal(credentials.length, 1);
});
