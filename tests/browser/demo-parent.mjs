// The demo's parent: creates (or signs in to) the "Demo family" account
// through the real sign-in pages with a DEMO-ONLY virtual passkey. The demo
// watches are paired in the desktop app, which holds the family's keys.
//
// usage: node demo-parent.mjs ORIGIN CA_PEM PASSKEY_FILE
import { join } from "node:path";
import { setUpFamily } from "./family.mjs";

const [origin, caPath, passkeyFile] = process.argv.slice(2);
if (!origin || !caPath || !passkeyFile) {
  console.error("usage: node demo-parent.mjs ORIGIN CA_PEM PASSKEY_FILE");
  process.exitCode = 2;
} else {
  try {
    const watches = await setUpFamily({
      origin, caPath, passkeyFile, name: "Demo family",
      serverCert: join(caPath, "../../tls/server.pem"),
    });
    console.log(`Demo family has ${watches.length} watch(es): ${watches.map((w) => w.name).join(", ")}`);
  } catch (e) {
    console.error(`demo-parent: ${e.message}`);
    process.exitCode = 1;
  }
}
