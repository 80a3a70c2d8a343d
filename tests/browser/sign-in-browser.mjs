// WAYMARK_BROWSER for tests and the demo: the "system browser" the desktop
// app opens its sign-in page in. Headless Chromium with a virtual
// authenticator (a TEST/DEMO-ONLY software passkey) loads the page, uses the
// saved passkey (or creates the account and saves it), and follows the page
// back to the app's loopback address.
//
// usage: node sign-in-browser.mjs URL
// env:   WAYMARK_PASSKEY_FILE  the saved virtual passkey (0600), created if absent
//        WAYMARK_SERVER_CERT   the cloud's TLS certificate (trusted by its key)
//        WAYMARK_FAMILY_NAME   the account name when creating one
import { readFileSync, writeFileSync, existsSync, appendFileSync } from "node:fs";
import { launchWithAuthenticator } from "./chromium.mjs";
import { spkiOf } from "./cloud.mjs";

const url = process.argv[2];
const passkeyFile = process.env.WAYMARK_PASSKEY_FILE;
const serverCert = process.env.WAYMARK_SERVER_CERT;
const logFile = process.env.WAYMARK_BROWSER_LOG;
const say = (line) => (logFile ? appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`) : console.error(line));

if (!url || !passkeyFile || !serverCert) {
  console.error("usage: WAYMARK_PASSKEY_FILE=… WAYMARK_SERVER_CERT=… node sign-in-browser.mjs URL");
  process.exit(2);
}

const { context, page, cdp, authenticatorId } = await launchWithAuthenticator(spkiOf(serverCert));
try {
  const known = existsSync(passkeyFile);
  if (known) {
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: JSON.parse(readFileSync(passkeyFile, "utf8")) });
  }
  say(`opening ${new URL(url).pathname}`);
  await page.goto(url);
  const enrolling = (await page.getAttribute("#ceremony", "data-mode")) === "enroll";
  if (enrolling) {
    await page.click("#verify");
    await page.waitForSelector("#add:not([disabled])");
    await page.click("#add");
    await page.waitForSelector("#ceremony[data-done='true']");
    say("passkey added");
  } else {
    if (known) {
      await page.click("#sign-in");
    } else {
      if (!(await page.$eval("#create", (d) => d.open))) await page.click("#create summary");
      await page.fill("#display-name", process.env.WAYMARK_FAMILY_NAME || "Test family");
      await page.click("#register");
    }
    // The page sends the browser back to the app's loopback listener.
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/, { timeout: 30_000 });
    await page.waitForLoadState("load");
    say(`returned to the app: ${await page.textContent("h1")}`);
  }
  // Saved after every use, as an authenticator keeps its signature counter:
  // a passkey that comes back with an old counter looks cloned, and the
  // cloud refuses it.
  const saved = known ? JSON.parse(readFileSync(passkeyFile, "utf8")).credentialId : null;
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  const mine = credentials.find((c) => c.credentialId === saved) || credentials[0];
  writeFileSync(passkeyFile, JSON.stringify(mine), { mode: 0o600 });
} catch (e) {
  say(`sign-in browser failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
