import * as fs from "node:fs";
import * as path from "node:path";
import { cleanupAll, tempDir } from "../test/bench/resources";
import { HISTORY_REPO_PARAMS } from "./initialSync";
import { serveClones, timedClone, profiledClone } from "./servedClones";
import { sampleTrees } from "./cpuSampler";
function own(pid: number) { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8"); const x = f.slice(f.lastIndexOf(")") + 2).split(" "); return (Number(x[11]) + Number(x[12])) * 10; }
(async () => {
  try {
    const s = await serveClones(HISTORY_REPO_PARAMS, console.log);
    const work = tempDir("exp");
    const dpid = s.mirror.daemon.child.pid as number;
    for (let i = 0; i < 4; i++) {
      for (const name of ["ours", "http_backend"] as const) {
        const d0 = own(dpid);
        const p = await profiledClone(s, name, path.join(work, `x${i}${name}.git`));
        console.log(name, Math.round(p.ms), "server", p.serverGit, "nginx", p.nginx, "client", p.client, "daemon-node-own", own(dpid) - d0);
      }
    }
    console.log(fs.readdirSync(path.join(s.mirrorDir, "objects/pack")));
  } finally { await cleanupAll(); }
})();
