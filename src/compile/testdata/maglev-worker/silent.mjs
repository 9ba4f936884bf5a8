// A steering worker that never answers (maglev-async.test.ts): only the timeout ends it.
import { setInterval } from 'node:timers';

setInterval(() => undefined, 1000);
