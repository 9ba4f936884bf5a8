// The entry point of the steering-table worker thread (maglev-async.ts). Plain JavaScript because
// a Node 20 worker does not inherit the main thread's module hooks: it registers tsx itself, as
// bin/anyedge.mjs does, before it can load the TypeScript job.
import { register } from 'tsx/esm/api';

register();
await import('./maglev-worker.ts');
