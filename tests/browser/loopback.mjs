// The app's side of RFC 8252: a one-shot listener on 127.0.0.1 that waits
// for the browser to come back with ?code=…&state=….
import http from "node:http";
import crypto from "node:crypto";

export async function loopback() {
  let deliver;
  const arrived = new Promise((r) => (deliver = r));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>Waymark</title><p>Signed in. You can close this window.</p>");
    deliver({ path: url.pathname, code: url.searchParams.get("code"), state: url.searchParams.get("state") });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const redirectUri = `http://127.0.0.1:${server.address().port}/callback`;
  const verifier = crypto.randomBytes(32).toString("base64url");
  const challenge = crypto.createHash("sha256").update(verifier).digest("base64url");
  const state = crypto.randomBytes(16).toString("base64url");
  return {
    redirectUri,
    verifier,
    state,
    authorizePath: `/authorize?${new URLSearchParams({
      response_type: "code",
      client_id: "waymark-desktop",
      redirect_uri: redirectUri,
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    })}`,
    arrived,
    // The browser keeps its connection alive; drop it so close() returns now.
    close: () => new Promise((r) => { server.close(r); server.closeAllConnections(); }),
  };
}
