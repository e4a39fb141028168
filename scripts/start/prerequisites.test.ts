import { describeMissing, missingRequirements } from "./prerequisites";

test("a missing nginx names the Debian package and the install command", () => {
  const missing = missingRequirements((c) => c !== "/usr/sbin/nginx", true);
  expect(missing.map((m) => m.pkg)).toEqual(["nginx"]);
  expect(describeMissing(missing)).toMatch(/apt-get install -y nginx/);
});

test("sshd is only needed for the demo primary", () => {
  const none = (c: string) => c !== "/usr/sbin/sshd";
  expect(missingRequirements(none, false)).toEqual([]);
  expect(missingRequirements(none, true).map((m) => m.pkg)).toEqual(["openssh-server"]);
});
