/**
 * What apply asks of a service manager, and the production one: systemctl. The exec
 * supervisor (execSupervisor.ts) is the other: it runs the units' commands directly, for
 * tests and `npm start` on machines where systemd is not PID 1.
 */
import { ServiceState } from "./serviceActions";
import { mustRun, runProcess } from "./runProcess";

export interface ServiceManager {
  readonly name: string;
  state(unit: string): Promise<ServiceState>;
  daemonReload(): Promise<void>;
  enable(unit: string): Promise<void>;
  start(unit: string): Promise<void>;
  restart(unit: string): Promise<void>;
  reload(unit: string): Promise<void>;
}

const hint = (unit: string) => `see \`systemctl status ${unit}\` and \`journalctl -u ${unit}\``;

export function systemctlManager(systemctl = "systemctl"): ServiceManager {
  return {
    name: "systemctl",
    async state(unit) {
      // is-active/is-enabled answer with their exit code; non-zero means "no" (or "unknown unit").
      const active = (await runProcess([systemctl, "is-active", "--quiet", unit])).code === 0;
      const enabled = (await runProcess([systemctl, "is-enabled", "--quiet", unit])).code === 0;
      return { active, enabled };
    },
    async daemonReload() {
      await mustRun([systemctl, "daemon-reload"], "systemd could not reload its unit files");
    },
    async enable(unit) {
      await mustRun([systemctl, "enable", unit], `cannot enable ${unit}`);
    },
    async start(unit) {
      await mustRun([systemctl, "start", unit], `${unit} did not start; ${hint(unit)}`);
    },
    async restart(unit) {
      await mustRun([systemctl, "restart", unit], `${unit} did not restart; ${hint(unit)}`);
    },
    async reload(unit) {
      await mustRun([systemctl, "reload", unit], `${unit} did not reload; ${hint(unit)}`);
    },
  };
}
