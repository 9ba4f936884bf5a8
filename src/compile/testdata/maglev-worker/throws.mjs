// A steering worker that throws while loading (maglev-async.test.ts).
throw new Error('boom in the worker');
