import { cleanupAll } from "./resources";

// Every test file cleans up whatever its fixtures made, even when a test failed.
afterAll(async () => {
  await cleanupAll();
});
