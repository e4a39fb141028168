import { Benchmark } from "./benchmark";
export const daemonRssBenchmark: Benchmark = { name: "daemon_rss", summary: "todo", run: async () => { throw new Error("todo"); } };
