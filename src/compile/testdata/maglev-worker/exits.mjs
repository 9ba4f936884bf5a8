// A steering worker that exits without answering (maglev-async.test.ts).
process.exit(3);
