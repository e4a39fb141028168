import { ownsScan, rendezvousWeight, scanOwner, SharePeer, shareView, viewSignature } from "./scanShare";

const keys = Array.from({ length: 3000 }, (_, i) => `PRJ${i % 17}/repo-${i}`);

function shares(nodes: string[]): Map<string, number> {
  const m = new Map(nodes.map((n) => [n, 0]));
  for (const k of keys) {
    const o = scanOwner(k, nodes)!;
    m.set(o, m.get(o)! + 1);
  }
  return m;
}

function moved(before: string[], after: string[]): number {
  return keys.filter((k) => scanOwner(k, before) !== scanOwner(k, after)).length;
}

describe("rendezvous ownership", () => {
  test("weights are deterministic 48-bit integers that depend on both the node and the key", () => {
    expect(rendezvousWeight("node-a", "P/r")).toBe(rendezvousWeight("node-a", "P/r"));
    expect(rendezvousWeight("node-a", "P/r")).not.toBe(rendezvousWeight("node-b", "P/r"));
    expect(rendezvousWeight("node-a", "P/r")).not.toBe(rendezvousWeight("node-a", "P/s"));
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    expect(rendezvousWeight("ab", "c")).not.toBe(rendezvousWeight("a", "bc"));
    expect(Number.isSafeInteger(rendezvousWeight("x", "y"))).toBe(true);
  });

  test("the owner does not depend on the order nodes are listed in; no node: no owner", () => {
    for (const k of keys.slice(0, 200)) expect(scanOwner(k, ["a", "b", "c"])).toBe(scanOwner(k, ["c", "a", "b"]));
    expect(scanOwner("P/r", [])).toBeUndefined();
    expect(scanOwner("P/r", ["only"])).toBe("only");
  });

  test.each([
    [["node-1", "node-2"]],
    [["node-1", "node-2", "node-3"]],
    [["ip-10-0-1-23", "ip-10-0-2-7", "ip-10-0-3-99", "ip-10-0-1-200", "ip-10-0-2-45"]],
  ])("balance over %j: every node owns 1/N of the keys within 15%%", (nodes) => {
    const fair = keys.length / nodes.length;
    for (const [, n] of shares(nodes)) {
      expect(n).toBeGreaterThan(fair * 0.85);
      expect(n).toBeLessThan(fair * 1.15);
    }
  });

  test.each([
    ["a node joins 2 -> 3", ["n1", "n2"], ["n1", "n2", "n3"], 1 / 3],
    ["a node joins 3 -> 4", ["n1", "n2", "n3"], ["n1", "n2", "n3", "n4"], 1 / 4],
    ["a node leaves 3 -> 2", ["n1", "n2", "n3"], ["n1", "n3"], 1 / 3],
    ["a node leaves 5 -> 4", ["n1", "n2", "n3", "n4", "n5"], ["n1", "n2", "n4", "n5"], 1 / 5],
  ])("stability, %s: only ~1/N of the keys move, all of them to or from that node", (_what, before, after, fraction) => {
    const m = moved(before, after);
    expect(m).toBeGreaterThan(keys.length * fraction * 0.85);
    expect(m).toBeLessThan(keys.length * fraction * 1.15);
    const changedNode = [...before.filter((n) => !after.includes(n)), ...after.filter((n) => !before.includes(n))][0];
    for (const k of keys) {
      const a = scanOwner(k, before);
      const b = scanOwner(k, after);
      if (a !== b) expect(a === changedNode || b === changedNode).toBe(true);
    }
  });
});

describe("shareView: whom this node scans", () => {
  const peer = (node: string | undefined, healthy = true, self = false): SharePeer => ({ node, healthy, self });
  const ready = { id: "b", ready: true, draining: false };

  test.each<[string, { id: string; ready: boolean; draining: boolean }, SharePeer[], string]>([
    ["no peers listed: all", ready, [], "all"],
    ["only its own entry: all", ready, [peer("b", true, true)], "all"],
    ["every peer unhealthy: all", ready, [peer("a", false), peer("c", false)], "all"],
    ["an anonymous peer (no id yet) does not share: all", ready, [peer(undefined)], "all"],
    ["a peer with this node's own id merges with it: all", ready, [peer("b")], "all"],
    ["ready with healthy peers: share among them and itself", ready, [peer("a"), peer("c"), peer("d", false), peer("b", true, true)], "counted:a,b,c"],
    ["starting (not ready) with a peer up: all (catch up on what it missed while down)", { id: "b", ready: false, draining: false }, [peer("a")], "all"],
    ["draining with a peer up: nothing (not counted by itself either)", { id: "b", ready: false, draining: true }, [peer("a"), peer("c")], "not-counted:a,c"],
    ["draining and alone: all", { id: "b", ready: false, draining: true }, [peer("a", false)], "all"],
  ])("%s", (_what, self, peers, sig) => {
    expect(viewSignature(shareView(self, peers))).toBe(sig);
  });

  test("the nodes of one view, seen from each of them, split the keys exactly: each key owned once", () => {
    const ids = ["a", "b", "c"];
    const views = ids.map((id) => shareView({ id, ready: true, draining: false }, ids.filter((x) => x !== id).map((x) => peer(x))));
    for (const k of keys) expect(views.filter((v) => ownsScan(v, k)).length).toBe(1);
  });

  test("a draining node owns nothing while its peers split its share between them", () => {
    const draining = shareView({ id: "b", ready: false, draining: true }, [peer("a"), peer("c")]);
    const a = shareView({ id: "a", ready: true, draining: false }, [peer("b", false), peer("c")]);
    const c = shareView({ id: "c", ready: true, draining: false }, [peer("a"), peer("b", false)]);
    for (const k of keys) {
      expect(ownsScan(draining, k)).toBe(false);
      expect(Number(ownsScan(a, k)) + Number(ownsScan(c, k))).toBe(1);
    }
  });
});
