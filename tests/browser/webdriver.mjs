// A small W3C WebDriver client (fetch only) for driving the real Tauri window
// through tauri-driver, which hands the session to WebKitWebDriver.

export class WebDriver {
  constructor(base, sessionId) {
    this.base = base;
    this.sessionId = sessionId;
  }

  /** Starts the app at `application` (tauri-driver launches it, with `args`). */
  static async start(base, application, args = []) {
    const res = await raw(base, "POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application, args } } },
    });
    return new WebDriver(base, res.sessionId);
  }

  cmd(method, path, body) {
    return raw(this.base, method, `/session/${this.sessionId}${path}`, body);
  }

  /** Runs `script` (a function body) in the page and returns its value. */
  exec(script, ...args) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  /** Runs an async script; it calls `arguments[arguments.length - 1](value)` when done. */
  execAsync(script, ...args) {
    return this.cmd("POST", "/execute/async", { script, args });
  }

  async find(css) {
    const el = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return Object.values(el)[0];
  }

  /** Waits until `css` matches a displayed element; returns its id. */
  async waitFor(css, { timeout = 30_000, what = css } = {}) {
    return this.until(async () => {
      const shown = await this.exec(
        "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
        css,
      );
      return shown ? this.find(css) : null;
    }, { timeout, what });
  }

  /** Polls `check` until it returns something truthy (bounded by `timeout`). */
  async until(check, { timeout = 30_000, what = "condition" } = {}) {
    const end = Date.now() + timeout;
    let last;
    while (Date.now() < end) {
      try {
        last = await check();
        if (last) return last;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
  }

  async click(css) {
    const id = await this.waitFor(css);
    await this.cmd("POST", `/element/${id}/click`, {});
  }

  /** A real mouse click `dx`, `dy` pixels from the centre of `css` (W3C
   *  actions, from the viewport: WebKitWebDriver takes no element origin). */
  async clickAt(css, dx, dy) {
    await this.waitFor(css);
    const [cx, cy] = await this.exec(
      "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];",
      css,
    );
    const at = { origin: "viewport", x: Math.round(cx + dx), y: Math.round(cy + dy) };
    await this.cmd("POST", "/actions", {
      actions: [{
        type: "pointer",
        id: "mouse",
        parameters: { pointerType: "mouse" },
        actions: [
          { type: "pointerMove", ...at, duration: 0 },
          { type: "pointerDown", button: 0 },
          { type: "pointerUp", button: 0 },
        ],
      }],
    });
    await this.cmd("DELETE", "/actions");
  }

  async type(css, text) {
    const id = await this.waitFor(css);
    await this.cmd("POST", `/element/${id}/clear`, {});
    await this.cmd("POST", `/element/${id}/value`, { text });
  }

  text(css) {
    return this.exec("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css);
  }

  count(css) {
    return this.exec("return document.querySelectorAll(arguments[0]).length;", css);
  }

  /** The window's {x, y, width, height}. */
  rect() {
    return this.cmd("GET", "/window/rect");
  }

  setRect(rect) {
    return this.cmd("POST", "/window/rect", rect);
  }

  /** Drives the app's window after it was opened again (closing to the tray
   *  destroys the window; the tray opens a new one). */
  async followNewWindow({ timeout = 30_000 } = {}) {
    const handle = await this.until(async () => (await this.cmd("GET", "/window/handles"))[0], { timeout, what: "the app's new window" });
    await this.cmd("POST", "/window", { handle });
  }

  /** Whether the page is shown (false while the window is hidden). */
  visible() {
    return this.exec("return document.visibilityState === 'visible';");
  }

  quit() {
    return this.cmd("DELETE", "");
  }
}

async function raw(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    // A command that never answers fails the test instead of hanging it.
    signal: AbortSignal.timeout(90_000),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok || (json.value && json.value.error)) {
    const v = json.value || {};
    throw new Error(`WebDriver ${method} ${path}: ${v.error || res.status} ${v.message || ""}`.trim());
  }
  return json.value;
}
