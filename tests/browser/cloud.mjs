// Starts a real waymark-cloud process (init + serve on a random loopback
// port), and gives the test an HTTPS client that trusts only its local CA.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import https from "node:https";
import crypto from "node:crypto";

export async function startCloud(binary, { env = {} } = {}) {
  const dir = join(mkdtempSync(join(tmpdir(), "waymark-browser-")), "cloud");
  execFileSync(binary, ["init", "--dir", dir, "--listen", "127.0.0.1:0"], { stdio: "ignore" });
  const child = spawn(binary, ["serve", "--dir", dir], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
  const origin = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("cloud did not start in 30 s")), 30_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/serving (https:\/\/localhost:\d+)\/? on/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => reject(new Error(`cloud exited with ${code}`)));
  });
  const ca = readFileSync(join(dir, "ca/ca.pem"));
  const spki = spkiOf(join(dir, "tls/server.pem"));
  return {
    origin,
    dir,
    ca,
    spki,
    port: Number(new URL(origin).port),
    stop: () => new Promise((r) => { child.once("exit", r); child.kill("SIGTERM"); }),
    request: (method, path, { form, token, json, origin: from } = {}) =>
      request(origin, ca, method, path, { form, token, json, origin: from }),
  };
}

/** base64 SHA-256 of a certificate's public key, for --ignore-certificate-errors-spki-list. */
export function spkiOf(certPemPath) {
  const leaf = new crypto.X509Certificate(readFileSync(certPemPath, "utf8"));
  return crypto.createHash("sha256").update(leaf.publicKey.export({ type: "spki", format: "der" })).digest("base64");
}

/** An HTTPS request that trusts only `ca`; resolves to { status, body }. */
export function request(origin, ca, method, path, { form, token, json, origin: from } = {}) {
  const url = new URL(path, origin);
  const headers = {};
  let body;
  if (form) {
    body = new URLSearchParams(form).toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (json) {
    body = JSON.stringify(json);
    headers["content-type"] = "application/json";
  }
  if (token) headers.authorization = `Bearer ${token}`;
  // As a page on `from` would send it (the ceremony endpoints answer only their own origin).
  if (from) headers.origin = from;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca, minVersion: "TLSv1.2" }, (res) => {
      let data = "";
      res.on("data", (c) => (data += c));
      res.on("end", () => {
        let parsed = data;
        try { parsed = JSON.parse(data); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body: parsed });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
