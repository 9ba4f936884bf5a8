/**
 * What every zero-allocation header view shares: a window [off, end) of a buffer it is pointed
 * at. A decoder keeps one view per protocol and re-points it for each packet with `reset`, so
 * walking a frame allocates nothing; the protocol's subclass adds typed field accessors and a
 * `check()` that bounds them.
 */
import { EMPTY } from './bytes.ts';

export abstract class HeaderView {
  /** The underlying buffer. */
  buf: Uint8Array = EMPTY;
  /** Offset of the header in `buf`. */
  off = 0;
  /** End (exclusive) of what the header covers (frame, packet, segment or message). */
  end = 0;
  /** Absolute offset of the last fault `check()` reported. */
  faultAt = 0;

  /** Points the view at a header. */
  reset(buf: Uint8Array, off = 0, end = buf.length): this {
    this.buf = buf;
    this.off = off;
    this.end = end;
    return this;
  }
}
