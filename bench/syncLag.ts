import { Benchmark } from "./benchmark";
export const syncLagBenchmark: Benchmark = { name: "sync_lag", summary: "todo", run: async () => { throw new Error("todo"); } };
