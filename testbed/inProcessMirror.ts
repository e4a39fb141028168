/**
 * The sync daemon started in-process against a bench primary, with its status board, so
 * tests can drive reconciles and read /status-equivalent state without a subprocess.
 */
import pino from "pino";
import { Daemon } from "../sync/daemon/daemon";
import { boardObserver } from "../sync/daemon/observer";
import { DaemonSettings } from "../sync/daemon/settings";
import { StatusBoard } from "../sync/state/statusBoard";
import { RepoId } from "../sync/types";
import { parsePinnedKeys } from "../sync/upstream/hostKeys";
import type { Primary } from "./primary";
import { makeMirrorHome, MirrorHome } from "./mirrorHome";
import { onCleanup } from "./resources";

export interface InProcessMirror extends MirrorHome {
  daemon: Daemon;
  board: StatusBoard;
  settings: DaemonSettings;
  stop(): Promise<void>;
}

export async function startInProcessMirror(primary: Primary, repos: RepoId[], over: Partial<DaemonSettings> = {}, mh?: MirrorHome): Promise<InProcessMirror> {
  const m = mh ?? (await makeMirrorHome(primary));
  const settings: DaemonSettings = {
    home: m.home,
    upstream: { host: primary.host, port: primary.port, user: primary.user, keyFile: m.keyFile, pinned: parsePinnedKeys(primary.hostKeyLine) },
    catalog: { kind: "static", repos },
    projects: "ALL",
    intervalMs: 3_600_000, // tests drive reconciles themselves
    concurrency: 4,
    timeoutMs: 60_000,
    excludeRefs: [],
    backoff: { baseMs: 200, maxMs: 2000 },
    purge: { enabled: true, protectPercent: 5 },
    maintenance: { repackIntervalMs: 86_400_000, fsckIntervalMs: 7 * 86_400_000 },
    scanParallelism: 16,
    scanConnections: 2,
    ...over,
  };
  const board = new StatusBoard({ defaultMetrics: false });
  const daemon = new Daemon(settings, boardObserver(board, pino({ level: process.env.SMART_MIRROR_TEST_LOG ?? "silent" })));
  await daemon.start();
  const stop = onCleanup(() => daemon.stop(2000));
  return { ...m, daemon, board, settings, stop };
}
