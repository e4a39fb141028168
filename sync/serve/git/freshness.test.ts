import { behindMessage } from "./freshness";

describe("behindMessage", () => {
  it("is one printable line naming what is missing, why, and where to fetch instead", () => {
    const m = behindMessage("abc", "the primary cannot be reached (connect ECONNREFUSED\n\u0007)", "https://p/scm/P/r.git");
    expect(m).toBe("the mirror is behind the primary: it does not have abc yet, and the primary cannot be reached (connect ECONNREFUSED??). Retry in a moment, or fetch it from the primary: https://p/scm/P/r.git");
    expect(m).not.toMatch(/\n/);
  });
});
