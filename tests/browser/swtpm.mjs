// Software TPMs (Debian's swtpm) for the desktop test: manufactured by
// swtpm_setup with an endorsement key certificate from a local "TPM maker"
// CA, and served on loopback (the TSS's swtpm TCTI uses PORT and PORT+1).
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { join } from "node:path";

/** A TPM maker: its own CA in `dir`. */
export function tpmMaker(dir) {
  const ca = join(dir, "ca");
  mkdirSync(ca, { recursive: true });
  writeFileSync(join(dir, "localca.conf"),
    `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
  writeFileSync(join(dir, "localca.options"), "--platform-manufacturer Waymark-e2e\n--platform-version 2.1\n--platform-model swtpm\n");
  writeFileSync(join(dir, "setup.conf"),
    `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/localca.conf\ncreate_certs_tool_options = ${dir}/localca.options\nactive_pcr_banks = sha256\n`);
  return {
    setupConf: join(dir, "setup.conf"),
    /** The maker's CA certificates, PEM (exist once it has made a TPM). */
    bundle: () => readFileSync(join(ca, "issuercert.pem"), "utf8") + readFileSync(join(ca, "swtpm-localca-rootca-cert.pem"), "utf8"),
  };
}

function listenable(port) {
  return new Promise((res) => {
    const s = createServer().once("error", () => res(false)).listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

async function freePortPair() {
  for (let i = 0; i < 100; i++) {
    const port = await new Promise((res) => {
      const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
    });
    if (port < 65535 && (await listenable(port + 1))) return port;
  }
  throw new Error("no two adjacent free loopback ports");
}

/** Manufactures a TPM in `dir` and starts it; returns { tcti, child }. */
export async function startTpm(maker, dir) {
  mkdirSync(dir, { recursive: true });
  execFileSync("swtpm_setup", ["--tpm2", "--create-ek-cert", "--overwrite", "--tpmstate", dir, "--config", maker.setupConf], { stdio: "ignore" });
  const port = await freePortPair();
  const child = spawn("swtpm", ["socket", "--tpm2", "--tpmstate", `dir=${dir}`,
    "--server", `type=tcp,port=${port},bindaddr=127.0.0.1`, "--ctrl", `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    "--flags", "not-need-init,startup-clear"], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((res) => {
      const c = connect(port, "127.0.0.1", () => { c.destroy(); res(true); }).once("error", () => res(false));
    });
    if (up) return { tcti: `swtpm:host=127.0.0.1,port=${port}`, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error(`swtpm did not listen on 127.0.0.1:${port}`);
}
