// A family account made through the real sign-in pages in headless Chromium
// with a virtual authenticator (a TEST/DEMO-ONLY software passkey). Watches
// are paired in the desktop app (only a computer holding the family's keys
// can answer a watch's code). The virtual passkey is saved (0600) so a later
// run, or the desktop app's WAYMARK_BROWSER script, signs in again.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { launchWithAuthenticator } from "./chromium.mjs";
import { request, spkiOf } from "./cloud.mjs";
import { loopback } from "./loopback.mjs";

/**
 * Signs the family in (creating the account when `passkeyFile` does not exist
 * yet) and returns the family's watches.
 */
export async function setUpFamily({ origin, caPath, serverCert, passkeyFile, name, askToJoin = false }) {
  const ca = readFileSync(caPath);
  const call = (method, path, opts) => request(origin, ca, method, path, opts);
  const { context, page, cdp, authenticatorId } = await launchWithAuthenticator(spkiOf(serverCert));
  try {
    const known = existsSync(passkeyFile);
    if (known) {
      await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: JSON.parse(readFileSync(passkeyFile, "utf8")) });
    }
    const lb = await loopback();
    await page.goto(origin + lb.authorizePath);
    if (known) {
      await page.click("#sign-in");
    } else {
      await page.click("#create summary");
      await page.fill("#display-name", name);
      await page.click("#register");
    }
    const back = await lb.arrived;
    await lb.close();
    if (back.state !== lb.state) throw new Error("state mismatch");
    const tokens = await call("POST", "/token", { form: {
      grant_type: "authorization_code", code: back.code, redirect_uri: lb.redirectUri,
      client_id: "waymark-desktop", code_verifier: lb.verifier, session_name: "Set-up script" } });
    if (tokens.status !== 200) throw new Error(`token exchange failed: ${JSON.stringify(tokens.body)}`);
    const token = tokens.body.access_token;
    // Saved after every use: the passkey's signature counter moved (see sign-in-browser.mjs).
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    writeFileSync(passkeyFile, JSON.stringify(credentials[0]), { mode: 0o600 });
    if (askToJoin) {
      // As a computer without the family's keys does: its public keys (random here).
      const key = () => randomBytes(32).toString("base64url");
      const r = await call("POST", "/api/v1/family/join-requests", { json: { signing: key(), sealing: key() }, token });
      if (r.status !== 201) throw new Error(`join request refused: ${JSON.stringify(r.body)}`);
    }
    const list = await call("GET", "/api/v1/watches", { token });
    // The set-up script's own session ends here; the app signs in for itself.
    await call("POST", "/revoke", { form: { token: tokens.body.refresh_token } });
    return list.body;
  } finally {
    await context.close();
  }
}
