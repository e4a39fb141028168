import { Benchmark } from "./benchmark";
export const initialSyncBenchmark: Benchmark = { name: "initial_sync", summary: "todo", run: async () => { throw new Error("todo"); } };
