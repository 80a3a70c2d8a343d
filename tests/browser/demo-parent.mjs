// The demo's parent: creates the "Demo family" account through the real
// sign-in pages in headless Chromium with a virtual authenticator (a
// DEMO-ONLY software passkey), pairs the demo watches with the codes they
// show, and prints the family's watches. The virtual passkey is saved
// (0600) beside the demo cloud so a later demo run can sign in again.
//
// usage: node demo-parent.mjs ORIGIN CA_PEM PASSKEY_FILE CODE...
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { launchWithAuthenticator } from "./chromium.mjs";
import { request, spkiOf } from "./cloud.mjs";
import { loopback } from "./loopback.mjs";

const [origin, caPath, passkeyFile, ...codes] = process.argv.slice(2);
if (!origin || !caPath || !passkeyFile) {
  console.error("usage: node demo-parent.mjs ORIGIN CA_PEM PASSKEY_FILE CODE...");
  process.exitCode = 2;
} else {
  await run();
}

async function run() {
  const ca = readFileSync(caPath);
  const call = (method, path, opts) => request(origin, ca, method, path, opts);

  const { context, page, cdp, authenticatorId } = await launchWithAuthenticator(spkiOf(join(caPath, "../../tls/server.pem")));
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
      await page.fill("#display-name", "Demo family");
      await page.click("#register");
    }
    const back = await lb.arrived;
    await lb.close();
    if (back.state !== lb.state) throw new Error("state mismatch");
    const tokens = await call("POST", "/token", { form: {
      grant_type: "authorization_code", code: back.code, redirect_uri: lb.redirectUri,
      client_id: "waymark-desktop", code_verifier: lb.verifier, session_name: "Demo script" } });
    if (tokens.status !== 200) throw new Error(`token exchange failed: ${JSON.stringify(tokens.body)}`);
    const token = tokens.body.access_token;
    if (!known) {
      const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
      writeFileSync(passkeyFile, JSON.stringify(credentials[0]), { mode: 0o600 });
    }
    for (const code of codes) {
      const r = await call("POST", "/api/v1/pairings", { json: { code }, token });
      console.log(r.status === 201 ? `paired ${r.body.name} (${r.body.id})` : `pairing ${code} refused: ${r.body.message}`);
    }
    const list = await call("GET", "/api/v1/watches", { token });
    console.log(`Demo family has ${list.body.length} watch(es): ${list.body.map((w) => w.name).join(", ")}`);
    await call("POST", "/revoke", { form: { token: tokens.body.refresh_token } });
  } finally {
    await context.close();
  }
}
