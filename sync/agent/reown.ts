/**
 * Re-own a home whose owner is not the account any more. Pure decision + argv; apply runs it.
 *
 * A kept data volume holds the mirror home with the numeric ids of the machine that wrote it.
 * A replaced machine whose account got other ids (an older deploy without fixed ids, or the
 * fixed id taken by something else there) would find every repository unreadable by its own
 * daemon. So when the home's owner differs from the account, apply hands over the files of
 * the home's previous owner (uid and gid separately, `--from`), and only those: a file of
 * someone else under the home keeps its owner. Symlinks are changed themselves, never
 * followed (-h, and -R does not traverse them), so a link in a repository cannot hand a
 * file outside the home to the daemon.
 */

export interface Ids {
  uid: number;
  gid: number;
}

export interface Reown {
  home: string;
  from: Ids;
  to: Ids;
}

/** Undefined when the home is missing or already the account's. */
export function decideReown(home: string, observed: Ids | undefined, account: Ids): Reown | undefined {
  if (!observed) return undefined;
  if (observed.uid === account.uid && observed.gid === account.gid) return undefined;
  return { home, from: observed, to: account };
}

/** The chown argvs (a uid pass and a gid pass); `hostHome` is the home under apply's --root. */
export function reownArgv(r: Reown, hostHome: string): string[][] {
  const passes: string[][] = [];
  if (r.from.uid !== r.to.uid) passes.push(["chown", "-R", "-h", `--from=${r.from.uid}`, String(r.to.uid), "--", hostHome]);
  if (r.from.gid !== r.to.gid) passes.push(["chown", "-R", "-h", `--from=:${r.from.gid}`, `:${r.to.gid}`, "--", hostHome]);
  return passes;
}

export function describeReown(r: Reown): string {
  return `home ${r.home} re-owned from ${r.from.uid}:${r.from.gid} to ${r.to.uid}:${r.to.gid}`;
}
