// A steering worker whose answer is not a table of the asked size (maglev-async.test.ts).
import { parentPort } from 'node:worker_threads';
parentPort.postMessage({ ok: true, first: new Int32Array(3), second: new Int32Array(3), builds: 0 });
