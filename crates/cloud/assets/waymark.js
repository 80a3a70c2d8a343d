// The passkey page: runs navigator.credentials against the cloud's relying
// party and then goes where the cloud says (back to the app's loopback
// address with a one-time code). It never sees a token.
"use strict";

const b64urlToBytes = (s) => {
  const pad = "=".repeat((4 - (s.length % 4)) % 4);
  const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};
const bytesToB64url = (buf) => {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

const main = document.getElementById("ceremony");
const requestId = main.dataset.request;
const statusEl = document.getElementById("status");

function say(text, isError) {
  statusEl.textContent = text;
  statusEl.className = isError ? "error" : "";
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.message || "The Waymark cloud refused the request.");
    err.code = data.error;
    throw err;
  }
  return data;
}

// Enrolment: the secret the confirmation gave this page. It lives only in
// this page's memory (never in a URL), so the link alone cannot add a passkey.
let confirmation = null;

async function register(displayName) {
  const started = await post("/ceremony/register/start", { request_id: requestId, display_name: displayName, confirmation });
  const pk = started.options.publicKey;
  pk.challenge = b64urlToBytes(pk.challenge);
  pk.user.id = b64urlToBytes(pk.user.id);
  (pk.excludeCredentials || []).forEach((c) => { c.id = b64urlToBytes(c.id); });
  const cred = await navigator.credentials.create({ publicKey: pk });
  return post("/ceremony/register/finish", {
    ceremony_id: started.ceremony_id,
    confirmation,
    credential: {
      id: cred.id,
      rawId: bytesToB64url(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        attestationObject: bytesToB64url(cred.response.attestationObject),
        clientDataJSON: bytesToB64url(cred.response.clientDataJSON),
        transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
      },
    },
  });
}

async function signIn() {
  const started = await post("/ceremony/sign-in/start", { request_id: requestId });
  const pk = started.options.publicKey;
  pk.challenge = b64urlToBytes(pk.challenge);
  (pk.allowCredentials || []).forEach((c) => { c.id = b64urlToBytes(c.id); });
  const cred = await navigator.credentials.get({ publicKey: pk });
  return post("/ceremony/sign-in/finish", {
    ceremony_id: started.ceremony_id,
    credential: {
      id: cred.id,
      rawId: bytesToB64url(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        authenticatorData: bytesToB64url(cred.response.authenticatorData),
        clientDataJSON: bytesToB64url(cred.response.clientDataJSON),
        signature: bytesToB64url(cred.response.signature),
        userHandle: cred.response.userHandle ? bytesToB64url(cred.response.userHandle) : null,
      },
    },
  });
}

function explain(e) {
  if (e && e.name === "NotAllowedError") return "The passkey prompt was closed or timed out. Try again.";
  if (e && e.name === "SecurityError") return "This page is not the Waymark sign-in page, so passkeys cannot be used here.";
  if (e && e.name === "InvalidStateError") return "That passkey is already registered. Sign in with it instead.";
  return (e && e.message) || "Something went wrong. Try again.";
}

function guard(button, work) {
  button.addEventListener("click", async () => {
    const buttons = document.querySelectorAll("button");
    buttons.forEach((b) => { b.dataset.wasDisabled = b.disabled; b.disabled = true; });
    say("Waiting for your passkey…");
    try {
      await work();
    } catch (e) {
      say(explain(e), true);
      main.dataset.lastError = (e && (e.code || e.name)) || "error";
    } finally {
      buttons.forEach((b) => { b.disabled = b.dataset.wasDisabled === "true"; });
    }
  });
}

function finish(result) {
  main.dataset.done = "true";
  say(result.message);
  if (result.redirect) window.location.assign(result.redirect);
}

if (main.dataset.mode === "sign-in") {
  // The app's "Create an account" button opens the page with prompt=create.
  if (new URLSearchParams(window.location.search).get("prompt") === "create") {
    document.getElementById("create").open = true;
    document.getElementById("display-name").focus();
  }
  guard(document.getElementById("sign-in"), async () => finish(await signIn()));
  guard(document.getElementById("register"), async () => {
    const name = document.getElementById("display-name").value.trim();
    if (!name) { say("Enter your name first.", true); return; }
    finish(await register(name));
  });
} else {
  const add = document.getElementById("add");
  guard(document.getElementById("verify"), async () => {
    const r = await signIn();
    confirmation = r.confirmation || null;
    say(r.message);
    main.dataset.verified = "true";
    add.dataset.wasDisabled = "false";
  });
  guard(add, async () => finish(await register(null)));
}
