import { TransferGuard } from "./transferGuard";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("TransferGuard", () => {
  const limits = { minBytesPerSec: 1000, windowMs: 10_000, maxTransferMs: 100_000 };

  test("slow while someone waits: cut once a whole window was slow", () => {
    const c = clock();
    let waiting = true;
    const g = new TransferGuard(limits, () => waiting, c.now);
    let bytes = 0;
    for (let s = 1; s < 10; s++) {
      c.advance(1000);
      bytes += 500;
      expect(g.check(bytes)).toBe("ok"); // not a whole window yet
    }
    c.advance(1000);
    bytes += 500;
    expect(g.check(bytes)).toBe("too_slow");
    waiting = false;
    expect(g.check(bytes)).toBe("ok"); // nobody needs the slot: a slow link keeps it
  });

  test("a fast start does not excuse a stall later: the window slides", () => {
    const c = clock();
    const g = new TransferGuard(limits, () => true, c.now);
    c.advance(1000);
    expect(g.check(50_000_000)).toBe("ok");
    for (let s = 0; s < 10; s++) {
      c.advance(1000);
      g.check(50_000_000 + s * 100);
    }
    c.advance(1000);
    expect(g.check(50_001_000)).toBe("too_slow");
  });

  test("fast enough: never cut for speed; the total time limit applies regardless", () => {
    const c = clock();
    const g = new TransferGuard(limits, () => true, c.now);
    let bytes = 0;
    for (let s = 0; s < 100; s++) {
      c.advance(1000);
      bytes += 2000;
      expect(g.check(bytes)).toBe("ok");
    }
    c.advance(1001);
    expect(g.check(bytes + 2000)).toBe("too_long");
  });
});
