// The desktop app benchmark (not a test: it prints numbers). Measures, on the
// real window under Xvfb through tauri-driver:
//   - start: from asking for a new app window to the sign-in screen shown;
//   - sign-in: from the click to the family's keys made on this first
//     computer (includes the headless Chromium sign-in browser's own start);
//     the watches are then paired in the window, as a parent does;
//   - markers: from the paired watches starting to walk to all on the map;
//   - live: from a watch taking a fix to that fix shown in the window (sign,
//     upload, store, live stream, app core, UI), watches reporting every second;
//   - memory: RSS and PSS of the app and its WebKit processes, at the sign-in
//     screen and with the family's watches on the map;
//   - installed size: the app is one binary (the UI is embedded); WebKitGTK
//     is the system's; and the .deb's installed size;
//   - the floor, in the same run: an almost empty Tauri window
//     (src-tauri/examples/empty_window.rs), its start to first paint and its
//     memory, and the app's ratios to it (goals: start ≤ 2×, PSS ≤ 1.3×).
// Run through scripts/bench-app.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { DesktopEnv } from "./desktop-env.mjs";
import { WebDriver } from "./webdriver.mjs";

const runs = Number(process.env.WAYMARK_BENCH_RUNS || 5);
const watchCount = Number(process.env.WAYMARK_BENCH_WATCHES || 4);
const env = new DesktopEnv({ driverPort: Number(process.env.WAYMARK_DRIVER_PORT || 4444) });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

/** The app process and every process below it (WebKit's web and network processes). */
function appTree(appBin) {
  const procs = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const exe = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
      return { pid: Number(pid), ppid, exe };
    } catch {
      return null;
    }
  }).filter(Boolean);
  const root = procs.filter((p) => p.exe === appBin).sort((a, b) => b.pid - a.pid)[0];
  if (!root) throw new Error("the app process was not found");
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...procs.filter((p) => p.ppid === tree[i].pid));
  return tree;
}

function memory(appBin) {
  let rss = 0;
  let pss = 0;
  const names = [];
  for (const p of appTree(appBin)) {
    const rollup = readFileSync(`/proc/${p.pid}/smaps_rollup`, "utf8");
    rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)[1]);
    const own = Number(/^Pss:\s+(\d+)/m.exec(rollup)[1]);
    pss += own;
    names.push(`${p.exe.split("/").pop()} ${(own / 1024).toFixed(0)}`);
  }
  return { rss: rss / 1024, pss: pss / 1024, names };
}

try {
  await env.start({ watchCount });
  await env.startDriver();

  const starts = [];
  let atSignIn;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const app = await env.openApp();
    await app.waitFor("#sign-in");
    starts.push(performance.now() - t0);
    if (i === runs - 1) {
      await new Promise((r) => setTimeout(r, 2000));
      atSignIn = memory(env.appBin);
    }
    await app.quit();
  }

  // The floor: an empty Tauri window, started the same way, drawn as
  // WebKitGTK draws by default and (like the app) in software.
  const emptyBin = process.env.WAYMARK_BENCH_EMPTY;
  const floor = async (args) => {
    const starts = [];
    let mem = null;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const empty = await WebDriver.start(env.driverBase, emptyBin, args);
      await empty.waitFor("#ready");
      starts.push(performance.now() - t);
      if (i === runs - 1) {
        await new Promise((r) => setTimeout(r, 2000));
        mem = memory(emptyBin);
      }
      await empty.quit();
    }
    return { starts, mem };
  };
  const emptyDefault = emptyBin ? await floor([]) : null;
  const emptySoftware = emptyBin ? await floor(["--software-drawing"]) : null;

  const app = await env.openApp();
  await app.waitFor("#sign-in");
  const t0 = performance.now();
  await app.click("#sign-in");
  await app.waitFor("#recovery-key", { timeout: 60_000, what: "the family's keys" });
  const signIn = performance.now() - t0;
  await app.click("#recovery-key-saved");
  for (const dir of env.watches) await env.pairInApp(app, dir, { family: "Rivera family" });
  const routes = ["builtin:park-loop", "builtin:school-run", "builtin:harbour-walk"];
  const t1 = performance.now();
  env.watches.forEach((dir, i) => env.walk(dir, routes[i % routes.length]));
  await app.until(async () => (await app.count(".leaflet-tooltip.watch-label")) === watchCount, { timeout: 60_000, what: "all markers" });
  const markers = performance.now() - t1;

  // Live: from the moment a watch takes a fix (its timestamp; same machine
  // clock) to that fix being shown in the window (the list item's data).
  const lags = [];
  const latest = "return [...document.querySelectorAll('li.watch')].map(l => Number(l.dataset.lastFix || 0));";
  let seen = await app.exec(latest);
  const deadline = performance.now() + 60_000;
  while (lags.length < 20 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    const now = await app.exec(latest);
    const at = Date.now();
    now.forEach((t, i) => {
      if (t > (seen[i] ?? 0)) lags.push(at - t);
    });
    seen = now;
  }
  await new Promise((r) => setTimeout(r, 3000));
  const withWatches = memory(env.appBin);
  // Closed to the tray, still following the live stream.
  env.closeWindow();
  await app.until(async () => !(await app.visible().catch(() => false)), { what: "the window to close to the tray" });
  await new Promise((r) => setTimeout(r, 3000));
  const inTray = memory(env.appBin);
  await app.quit();
  const deb = process.env.WAYMARK_BENCH_DEB;
  const debSize = deb ? Number(execFileSync("dpkg-deb", ["-f", deb, "Installed-Size"], { encoding: "utf8" })) / 1024 : null;

  console.log(`\nWaymark desktop app (${env.appBin})`);
  console.log(`  start to sign-in screen       : ${fmt(starts)}`);
  console.log(`  sign-in to the family's keys  : ${signIn.toFixed(0)} ms (includes the test browser's Chromium start)`);
  console.log(`  ${watchCount} watches walking to markers : ${markers.toFixed(0)} ms (first fixes, upload, live stream)`);
  console.log(`  fix taken to shown in window  : ${lags.length ? fmt(lags) : "none seen in 60 s"} (polled every ~10 ms)`);
  console.log(`  memory at sign-in screen      : RSS ${atSignIn.rss.toFixed(0)} MB, PSS ${atSignIn.pss.toFixed(0)} MB (${atSignIn.names.join(", ")})`);
  console.log(`  memory with ${watchCount} live watches    : RSS ${withWatches.rss.toFixed(0)} MB, PSS ${withWatches.pss.toFixed(0)} MB (${withWatches.names.join(", ")})`);
  console.log(`  memory closed to the tray     : RSS ${inTray.rss.toFixed(0)} MB, PSS ${inTray.pss.toFixed(0)} MB (live stream and alerts still running)`);
  console.log(`  installed size                : ${(statSync(env.appBin).size / 1e6).toFixed(1)} MB (one binary, UI embedded; WebKitGTK from the system)`);
  if (debSize !== null) console.log(`  .deb installed size           : ${debSize.toFixed(1)} MB (${deb})`);
  if (emptyDefault) {
    const ratio = (a, b, goal) => `${(a / b).toFixed(2)}× (goal ≤ ${goal}×: ${a / b <= goal ? "met" : "NOT met"})`;
    const show = (title, { starts: s, mem }) => {
      console.log(`\n${title}`);
      console.log(`  start to first paint          : ${fmt(s)}`);
      console.log(`  memory                        : RSS ${mem.rss.toFixed(0)} MB, PSS ${mem.pss.toFixed(0)} MB (${mem.names.join(", ")})`);
      console.log(`  app start / empty start       : ${ratio(median(starts), median(s), 2)}`);
      console.log(`  app PSS / empty PSS, open     : ${ratio(withWatches.pss, mem.pss, 1.3)} (with ${watchCount} live watches)`);
      console.log(`  app PSS / empty PSS, in tray  : ${ratio(inTray.pss, mem.pss, 1.3)}`);
    };
    show(`An empty Tauri window, WebKitGTK's default drawing, same run (${emptyBin})`, emptyDefault);
    show("The same empty window drawn in software like the app (like for like), same run", emptySoftware);
  }
} finally {
  await env.stop();
}
