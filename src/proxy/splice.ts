/**
 * Splices two connected sockets both ways until both are gone. A FIN travels through (each side
 * was opened with `allowHalfOpen`, so the other direction keeps flowing after one side ends, as
 * TCP allows); an error or reset on either side destroys both; once one side is fully closed, the
 * other is ended and destroyed as soon as its buffered bytes are written, since nothing it
 * receives could be delivered any more. `onClosed` runs once, after both sockets are closed.
 */
import type { Socket } from 'node:net';

/** Splices `a` and `b`; `idleMs` > 0 closes a tunnel with no traffic for that long. */
export function splice(a: Socket, b: Socket, onClosed: () => void, idleMs = 0): void {
  const kill = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', kill);
  b.on('error', kill);
  let open = 2;
  const closed = (other: Socket) => (): void => {
    if (!other.destroyed) other.end(() => other.destroy());
    if (--open === 0) onClosed();
  };
  a.once('close', closed(b));
  b.once('close', closed(a));
  if (idleMs > 0) {
    a.setTimeout(idleMs, kill);
    b.setTimeout(idleMs, kill);
  }
  a.pipe(b);
  b.pipe(a);
}
