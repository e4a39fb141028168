/**
 * Limits on one transfer (one upload-pack answer) while it holds an upload-pack slot:
 * - a minimum rate: a transfer that moved fewer than `minBytesPerSec` × `windowMs` bytes over
 *   the last `windowMs` while another client waits for a slot is cut ("too_slow"). Four clients
 *   reading at 4 KB/s held every slot for as long as they liked; now they keep theirs only while
 *   nobody else needs one. Alone on the mirror, a slow link (or a long "counting objects" on a
 *   huge repository, where git sends only keepalives) is never cut for its speed.
 * - a total time (`maxTransferMs`, 0 = none), always: no transfer holds a slot for ever.
 * Like curl's --speed-limit/--speed-time, measured on bytes written to the client. Pure apart
 * from the clock.
 */
export interface TransferLimits {
  /** 0 = no minimum. */
  minBytesPerSec: number;
  windowMs: number;
  /** 0 = no limit. */
  maxTransferMs: number;
}

export type GuardVerdict = "ok" | "too_slow" | "too_long";

export class TransferGuard {
  private readonly start: number;
  private samples: { at: number; bytes: number }[] = [];

  constructor(
    private readonly limits: TransferLimits,
    /** Does someone else wait for a slot right now? */
    private readonly contended: () => boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.start = now();
    this.samples.push({ at: this.start, bytes: 0 });
  }

  /** Feed the bytes written so far (about once a second); what to do with the transfer. */
  check(bytes: number): GuardVerdict {
    const now = this.now();
    const l = this.limits;
    if (l.maxTransferMs > 0 && now - this.start > l.maxTransferMs) return "too_long";
    this.samples.push({ at: now, bytes });
    // Keep the newest sample at or before the window's start, and everything after it.
    while (this.samples.length > 2 && this.samples[1].at <= now - l.windowMs) this.samples.shift();
    if (l.minBytesPerSec <= 0 || now - this.start < l.windowMs) return "ok";
    const first = this.samples[0];
    if (now - first.at < l.windowMs) return "ok";
    const rate = ((bytes - first.bytes) * 1000) / (now - first.at);
    return rate < l.minBytesPerSec && this.contended() ? "too_slow" : "ok";
  }
}

/** Defaults: 16 KiB/s over 60 s (when others wait), 6 h in all. */
export const DEFAULT_TRANSFER_LIMITS: TransferLimits = { minBytesPerSec: 16 * 1024, windowMs: 60_000, maxTransferMs: 6 * 3600_000 };
