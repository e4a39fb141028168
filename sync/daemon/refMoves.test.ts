import { isSafeRefName } from "../store/repoStore";
import { mergeMoves, movesFromChanges } from "./refMoves";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const Z = "0".repeat(40);

test("a webhook's changes become moves; any change without usable hashes makes them unknown", () => {
  expect(movesFromChanges([{ refId: "refs/heads/main", fromHash: A, toHash: B }])).toEqual([{ ref: "refs/heads/main", old: A, new: B }]);
  expect(movesFromChanges([{ refId: "refs/heads/new", fromHash: Z, toHash: B.toUpperCase() }])).toEqual([{ ref: "refs/heads/new", old: Z, new: B }]);
  expect(movesFromChanges([{ refId: "refs/heads/main", toHash: B }])).toBe("unknown");
  expect(movesFromChanges([{ refId: "refs/heads/main", fromHash: "abc", toHash: B }])).toBe("unknown");
  expect(movesFromChanges([{ refId: "main", fromHash: A, toHash: B }])).toBe("unknown");
  expect(movesFromChanges([])).toBe("unknown");
  expect(movesFromChanges(undefined)).toBe("unknown");
});

test("webhooks before the next sync chain ref by ref; a gap or reorder makes them unknown", () => {
  const ab = movesFromChanges([{ refId: "refs/heads/main", fromHash: A, toHash: B }]);
  const bc = movesFromChanges([{ refId: "refs/heads/main", fromHash: B, toHash: C }]);
  const other = movesFromChanges([{ refId: "refs/heads/x", fromHash: Z, toHash: C }]);
  expect(mergeMoves(undefined, ab)).toEqual(ab);
  expect(mergeMoves(ab, bc)).toEqual([{ ref: "refs/heads/main", old: A, new: C }]);
  expect(mergeMoves(ab, other)).toEqual([
    { ref: "refs/heads/main", old: A, new: B },
    { ref: "refs/heads/x", old: Z, new: C },
  ]);
  expect(mergeMoves(bc, ab)).toBe("unknown");
  expect(mergeMoves("unknown", ab)).toBe("unknown");
  expect(mergeMoves(ab, "unknown")).toBe("unknown");
  // There and back: nothing left to move.
  expect(mergeMoves(ab, movesFromChanges([{ refId: "refs/heads/main", fromHash: B, toHash: A }]))).toEqual([]);
});

test("ref names from a primary or a webhook: only what git itself would accept reaches update-ref or packed-refs", () => {
  for (const ok of ["refs/heads/main", "refs/tags/v1.0", "refs/pull/12/head", "refs/heads/feature/x-y_z"]) expect(isSafeRefName(ok)).toBe(true);
  for (const bad of ["HEAD", "refs/heads/a b", "refs/heads/a\nb", "refs/heads/../x", "refs/heads/x.lock", "refs/heads/x/", "refs/heads/.x", "refs/heads/a@{1}", "refs/heads/a:b", "refs//x", "heads/main"]) expect(isSafeRefName(bad)).toBe(false);
});
