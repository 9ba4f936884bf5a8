/**
 * Stopping long-running commands (agent, proxy) on SIGTERM or SIGINT: the command awaits the
 * first signal and then shuts down in order, instead of Node exiting mid-write.
 */

/** Resolves with the signal's name at the first SIGTERM or SIGINT; `dispose` removes the handlers. */
export function firstSignal(): { promise: Promise<string>; dispose(): void } {
  let handler: (s: NodeJS.Signals) => void = () => {};
  const promise = new Promise<string>((resolve) => {
    handler = (s) => resolve(s);
  });
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  return {
    promise,
    dispose: () => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}
