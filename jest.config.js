// Jest transpiles only (isolatedModules): type errors are caught by `npm run typecheck`,
// which keeps the suite fast even with @pulumi/aws in the graph.
const transform = { "^.+\\.ts$": ["ts-jest", { diagnostics: false }] };
// .cache/ holds the examples installed from the package tarball (test/pulumi/exampleWorkspace.ts)
// and lib/ the compiled package: a consumer's copies, not our modules or tests.
const notOurs = ["<rootDir>/.cache/", "<rootDir>/lib/"];
const common = {
  testEnvironment: "node",
  transform,
  setupFilesAfterEnv: ["<rootDir>/testbed/setupAfterEnv.ts"],
  moduleFileExtensions: ["ts", "js", "json"],
  modulePathIgnorePatterns: notOurs,
  testPathIgnorePatterns: ["/node_modules/", ...notOurs],
};

/** @type {import('jest').Config} */
module.exports = {
  // testTimeout is a global option (ignored inside projects); integration tests start real servers.
  testTimeout: 120000,
  globalSetup: "<rootDir>/testbed/globalSetup.ts",
  globalTeardown: "<rootDir>/testbed/globalTeardown.ts",
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/{components,sync,infra,scripts,bench}/**/*.test.ts"] },
    { ...common, displayName: "integration", testMatch: ["<rootDir>/{test,testbed}/**/*.test.ts"] },
  ],
};
