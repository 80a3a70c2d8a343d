// Debian's Chromium, headless, with a fresh profile and a DevTools WebAuthn
// virtual authenticator (ctap2, internal, resident keys, user verification).
// A test-only / demo-only authenticator: it stands in for a person's passkey.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** Launches Chromium trusting exactly the server key `spki`; returns { context, page, cdp, authenticatorId }. */
export async function launchWithAuthenticator(spki) {
  // A persistent context is Playwright's way to give Chromium a fresh --user-data-dir.
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "waymark-chromium-")), {
    headless: true,
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic",
      // Trust exactly this run's server key, as a user who imported the local CA would.
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId };
}
