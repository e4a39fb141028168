import { sshCommand } from "./gitEnv";
import { controlPathFor, isPrimaryUnreachable } from "./openssh";
import { HostKeyMismatchError } from "./upstreamPool";

test("the ControlMaster socket path fits sun_path after OpenSSH's expansion, else falls back", () => {
  const expanded = (p: string) => p.replace("%C", "c".repeat(40)) + ".XXXXXXXXXXXXXXXX";
  expect(controlPathFor("/var/lib/smart-mirror")).toBe("/var/lib/smart-mirror/run/cm-%C");
  const deep = "/tmp/smart-mirror-local/var/lib/smart-mirror";
  expect(expanded(controlPathFor(deep)).length).toBeLessThan(104);
  expect(expanded(controlPathFor("/x".repeat(60))).length).toBeLessThan(104);
});

test("the primary's own trouble is told from one repository's", () => {
  expect(isPrimaryUnreachable(new HostKeyMismatchError("host key mismatch"))).toBe(true);
  expect(isPrimaryUnreachable(new Error("connect ECONNREFUSED 127.0.0.1:7999"))).toBe(true);
  expect(isPrimaryUnreachable(new Error("fatal: repository 'P/r.git' not found"))).toBe(false);
});

test("ssh command pins the host key, uses only our key and shares a master connection", () => {
  const c = sshCommand({ keyFile: "/k/id ed", knownHostsFile: "/k/kh", controlPath: "/r/cm-%C", controlPersistSec: 300, connectTimeoutSec: 10 });
  for (const part of ["StrictHostKeyChecking=yes", "UserKnownHostsFile=/k/kh", "-i '/k/id ed'", "IdentitiesOnly=yes", "ControlMaster=auto", "-F /dev/null"]) expect(c).toContain(part);
});
