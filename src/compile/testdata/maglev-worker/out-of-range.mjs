// A steering worker whose table points past the servers it was given (maglev-async.test.ts).
import { parentPort, workerData } from 'node:worker_threads';
const first = new Int32Array(workerData.size).fill(workerData.withDraining.length);
parentPort.postMessage({ ok: true, first, second: new Int32Array(workerData.size).fill(-1), builds: 0 });
