// A whole local Waymark for driving the desktop app: a real cloud process
// over TLS, a factory, real watch processes, a family made through the real
// passkey pages, and tauri-driver to open the real app window. Used by the
// desktop end-to-end test and the app benchmark.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startCloud } from "./cloud.mjs";
import { setUpFamily } from "./family.mjs";
import { startTpm, tpmMaker } from "./swtpm.mjs";
import { WebDriver } from "./webdriver.mjs";

const here = import.meta.dirname;

export class DesktopEnv {
  constructor({ binDir = process.env.WAYMARK_BIN_DIR || join(here, "../../target/debug"), driverPort = 4444 } = {}) {
    const bin = resolve(binDir);
    this.cloudBin = join(bin, "waymark-cloud");
    this.watchBin = join(bin, "waymark-watch");
    // The installed app (scripts/test-desktop installs the .deb) or the build.
    this.appBin = process.env.WAYMARK_APP_BIN || join(bin, "waymark");
    this.driverPort = driverPort;
    this.work = mkdtempSync(join(tmpdir(), "waymark-desktop-"));
    // The app's own home: its settings (app_config_dir), window state and
    // login entry are this test's, not the machine's.
    this.home = join(this.work, "home");
    mkdirSync(this.home);
    this.children = [];
    this.watches = [];
    for (const p of [this.cloudBin, this.watchBin, this.appBin]) {
      if (!existsSync(p)) throw new Error(`${p} is missing: build the workspace first`);
    }
  }

  run(cmd, args) {
    return execFileSync(cmd, args, { encoding: "utf8" });
  }

  /** Cloud, factory, `watchCount` watches (none paired: only a family computer
   *  holding the family's keys can pair one) and the family's account.
   *  The watches numbered in `tpm` keep their key in a software TPM, certified with --require-tpm. */
  async start({ watchCount, family = "Rivera family", tpm = [] }) {
    this.factory = join(this.work, "factory");
    this.run(this.cloudBin, ["factory", "init", "--dir", this.factory]);
    this.cloud = await startCloud(this.cloudBin, { env: { WAYMARK_MANUFACTURER_CAS: join(this.factory, "manufacturer-ca.pem") } });
    this.caPath = join(this.cloud.dir, "ca/ca.pem");
    this.serverCert = join(this.cloud.dir, "tls/server.pem");
    this.passkeyFile = join(this.work, "family-passkey.json");
    for (let n = 1; n <= watchCount; n++) {
      this.watches.push(tpm.includes(n) ? await this.makeTpmWatch(n) : this.makeWatch(n));
    }
    return setUpFamily({
      origin: this.cloud.origin, caPath: this.caPath, serverCert: this.serverCert,
      passkeyFile: this.passkeyFile, name: family,
    });
  }

  /** A watch made like at the factory: key, CSR, signed certificate. */
  makeWatch(n) {
    const dir = join(this.work, `watch-${n}`);
    this.run(this.watchBin, ["provision", "--dir", dir, "--cloud", this.cloud.origin, "--cloud-ca", this.caPath]);
    this.run(this.cloudBin, ["factory", "sign", "--dir", this.factory, "--csr", join(dir, "device.csr"),
      "--serial", `E2E-${String(n).padStart(4, "0")}`, "--model", "Waymark Kids 1", "--out", join(this.work, `cert-${n}.pem`)]);
    this.run(this.watchBin, ["install-cert", "--dir", dir, "--cert", join(this.work, `cert-${n}.pem`)]);
    return dir;
  }

  /** A watch whose key is made in its own TPM, attested to the factory, certified "hardware key". */
  async makeTpmWatch(n) {
    if (!this.tpmMaker) {
      this.tpmMaker = tpmMaker(join(this.work, "tpm-maker"));
      this.station = await startTpm(this.tpmMaker, join(this.work, "tpm-station"));
      this.children.push(this.station.child);
    }
    const tpm = await startTpm(this.tpmMaker, join(this.work, `tpm-${n}`));
    this.children.push(tpm.child);
    const dir = join(this.work, `watch-${n}`);
    this.run(this.watchBin, ["provision", "--dir", dir, "--keystore", "tpm", "--tcti", tpm.tcti,
      "--cloud", this.cloud.origin, "--cloud-ca", this.caPath]);
    const makerPem = join(this.work, "tpm-maker.pem");
    writeFileSync(makerPem, this.tpmMaker.bundle());
    this.run(this.cloudBin, ["factory", "trust-tpm-vendor", "--dir", this.factory, "--ca", makerPem]);
    const challenge = join(this.work, `challenge-${n}.json`);
    const answer = join(this.work, `answer-${n}.json`);
    this.run(this.cloudBin, ["factory", "challenge", "--dir", this.factory, "--request", join(dir, "attestation-request.json"),
      "--out", challenge, "--tcti", this.station.tcti]);
    this.run(this.watchBin, ["attest", "--dir", dir, "--challenge", challenge, "--out", answer]);
    this.run(this.cloudBin, ["factory", "sign", "--dir", this.factory, "--require-tpm", "--attestation", answer,
      "--csr", join(dir, "device.csr"), "--serial", `E2E-${String(n).padStart(4, "0")}`, "--model", "Waymark Kids 1 TPM",
      "--out", join(this.work, `cert-${n}.pem`)]);
    this.run(this.watchBin, ["install-cert", "--dir", dir, "--cert", join(this.work, `cert-${n}.pem`)]);
    return dir;
  }

  /** Has the watch show a pairing code and wait for the family's answer
   *  (`waymark-watch pair`, left running): the code as printed, the command's
   *  exit status to come, and all it printed so far. */
  async showCode(dir) {
    const child = spawn(this.watchBin, ["pair", "--dir", dir], { stdio: ["ignore", "pipe", "inherit"] });
    this.children.push(child);
    const exited = new Promise((r) => child.once("exit", (code) => r(code)));
    let out = "";
    const code = await new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/^PAIRING CODE: (\S+)$/m);
        if (m) resolve(m[1]);
      });
      child.once("exit", () => reject(new Error(`the watch printed no code: ${out}`)));
    });
    return { code, exited, output: () => out };
  }

  /** Pairs the watch in `dir` in `app` with the code it shows (`typed` as the
   *  parent types it); resolves once the watch's own `pair` command says it
   *  is paired to `family` and the app is back at its watch list. */
  async pairInApp(app, dir, { typed = (c) => c, family = "Rivera family" } = {}) {
    const shown = await this.showCode(dir);
    await app.click("#tab-pair");
    await app.type("#pair-code", typed(shown.code));
    await app.click("#pair-submit");
    await app.waitFor("#pair-done", { timeout: 30_000, what: "the pairing confirmation" });
    if ((await shown.exited) !== 0) throw new Error(`the watch's pair command failed: ${shown.output()}`);
    if (!shown.output().includes(`Paired with ${family}.`)) throw new Error(`the watch did not say it is paired: ${shown.output()}`);
    await app.waitFor("li.watch", { what: "the watch list after pairing" });
  }

  /** The watch walks `route`, reporting every second, until stopped. */
  walk(dir, route, { battery = 100, speed = 1.4, pollSecs = 60 } = {}) {
    const child = spawn(this.watchBin, ["run", "--dir", dir, "--route", route, "--interval", "1", "--battery", String(battery),
      "--speed-mps", String(speed), "--poll-secs", String(pollSecs)],
      { stdio: "ignore" });
    this.children.push(child);
    return child;
  }

  /** Starts tauri-driver with the app's settings for this cloud. */
  async startDriver() {
    const driver = spawn("tauri-driver", ["--port", String(this.driverPort), "--native-port", String(this.driverPort + 1)], {
      stdio: ["ignore", "inherit", "inherit"],
      // Its own process group: WebKitWebDriver and the app window it starts
      // are in it too, so stop() ends all of them even when a WebDriver quit
      // left the window open (an orphaned app keeps the test runner's output
      // pipe open, and the run would never end).
      detached: true,
      env: this.appEnv(),
    });
    this.children.push(driver);
    this.driver = driver;
    this.driverBase = `http://127.0.0.1:${this.driverPort}`;
    // tauri-driver answers /status once WebKitWebDriver is up.
    await new WebDriver(this.driverBase, null).until(
      async () => (await fetch(`${this.driverBase}/status`)).ok, { what: "tauri-driver", timeout: 30_000 });
  }

  /** The environment the app runs with: this cloud, its CA, the test browser and keychain service. */
  appEnv() {
    return {
      ...process.env,
      WAYMARK_CLOUD: this.cloud.origin,
      WAYMARK_CA: this.caPath,
      WAYMARK_BROWSER: `node ${join(here, "sign-in-browser.mjs")}`,
      WAYMARK_PASSKEY_FILE: this.passkeyFile,
      WAYMARK_SERVER_CERT: this.serverCert,
      WAYMARK_BROWSER_LOG: join(this.work, "browser.log"),
      WAYMARK_KEYCHAIN_SERVICE: "waymark-e2e",
      WAYMARK_SESSION_NAME: "Kitchen laptop",
      WAYMARK_MANUFACTURER_CAS: join(this.factory, "manufacturer-ca.pem"),
      HOME: this.home,
      XDG_CONFIG_HOME: join(this.home, ".config"),
      // Alerts look at the cloud every 2 s instead of 30 s.
      WAYMARK_ALERT_POLL_SECS: "2",
      // No WEBKIT_DISABLE_COMPOSITING_MODE: with it, WebKitWebDriver's screenshots never return.
    };
  }

  /** The desktop's notification server and tray host on this D-Bus session
   *  (desktop-bus.py); what they receive is read with `busEvents`. */
  async startDesktopBus() {
    this.busLog = join(this.work, "desktop-bus.jsonl");
    const bus = spawn("/usr/bin/python3", [join(here, "desktop-bus.py"), "serve", this.busLog], { stdio: ["ignore", "inherit", "inherit"] });
    this.children.push(bus);
    await new WebDriver(null, null).until(async () => this.busEvents("ready").length > 0, { what: "the desktop bus", timeout: 15_000 });
  }

  busEvents(kind) {
    if (!existsSync(this.busLog)) return [];
    return readFileSync(this.busLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.kind === kind);
  }

  /** The notifications shown so far: {summary, body}. */
  notifications() {
    return this.busEvents("notification");
  }

  /** The newest tray item registered (bus name + object path). */
  trayItem() {
    return this.busEvents("tray").at(-1)?.item;
  }

  /** The tray menu's entries, read over D-Bus (com.canonical.dbusmenu). */
  trayMenu() {
    const out = execFileSync("/usr/bin/python3", [join(here, "desktop-bus.py"), "tray-menu", this.trayItem()], { encoding: "utf8" });
    return JSON.parse(out);
  }

  trayClick(label) {
    execFileSync("/usr/bin/python3", [join(here, "desktop-bus.py"), "tray-click", this.trayItem(), label]);
  }

  /** Closes the app's window as its close button would (WM_DELETE_WINDOW). */
  closeWindow() {
    execFileSync("/usr/bin/python3", [join(here, "desktop-bus.py"), "close-window", "Waymark"]);
  }

  /** Opens the app window; returns its WebDriver session. */
  openApp() {
    return WebDriver.start(this.driverBase, this.appBin);
  }

  /** Another computer of the family: the app with a home, data folder,
   *  D-Bus session and Secret Service of its own (scripts/with-keychain),
   *  driven by a second tauri-driver; returns its WebDriver session. */
  async openSecondComputer(name, port = this.driverPort + 2) {
    const home = join(this.work, `home-${port}`);
    mkdirSync(home);
    const env = { ...this.appEnv(), HOME: home, XDG_CONFIG_HOME: join(home, ".config"), WAYMARK_SESSION_NAME: name };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    const driver = spawn(join(here, "../../scripts/with-keychain"),
      ["tauri-driver", "--port", String(port), "--native-port", String(port + 1)],
      { stdio: ["ignore", "inherit", "inherit"], detached: true, env });
    this.children.push(driver);
    this.drivers = [...(this.drivers || []), driver];
    const base = `http://127.0.0.1:${port}`;
    await new WebDriver(base, null).until(
      async () => (await fetch(`${base}/status`).catch(() => ({ ok: false }))).ok, { what: "the second tauri-driver", timeout: 30_000 });
    return WebDriver.start(base, this.appBin);
  }

  async stop() {
    for (const c of this.children) {
      try {
        if (c === this.driver || (this.drivers || []).includes(c)) process.kill(-c.pid, "SIGTERM");
        else c.kill("SIGTERM");
      } catch {
        c.kill("SIGTERM");
      }
    }
    if (this.cloud) await this.cloud.stop();
  }
}
