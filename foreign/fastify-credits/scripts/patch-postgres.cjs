// postinstall: guard postgres.js's deferred write against a closed socket.
//
// postgres.js (3.4.x, as of 3.4.10) batches small writes behind a setImmediate;
// when the server ends the connection first (pg_terminate_backend, a failover,
// a pooler's reset), closed() nulls the socket and the pending nextWrite()
// throws from the immediate: an uncatchable TypeError that exits the process
// (upstream: porsager/postgres#1154, #1208; fixes proposed in #1168, #1176,
// #1209, not released). tokenproof's faults suite found it here: killing the
// connections of transfers waiting on a lock took the whole service down.
// Teardown also cancels the immediate without clearing it, which would keep
// the connection from ever flushing again once reused.
//
// This script applies the guard the upstream pull requests propose, to both
// builds of the driver, and fails the install if the code it patches has
// changed (a new release: check whether it is fixed, then drop this script).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

// Beside this package (npm ci installs it flat into node_modules).
const root = path.join(__dirname, '..', 'node_modules', 'postgres');
const MARK = '/* tokenproof-foreign: nextWrite guard */';
const edits = [
  [
    '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    // Settle, not drop: a dropped write would leave its query waiting forever.
    `  function nextWrite(fn) {\n    ${MARK}\n    if (!socket) {\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n    const x = socket.write(chunk, fn)`,
  ],
  [
    '    clearImmediate(nextWriteTimer)\n    if (socket) {',
    '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {',
  ],
  [
    '    incomings = null\n    clearImmediate(nextWriteTimer)\n',
    '    incomings = null\n    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n',
  ],
];

for (const file of ['src/connection.js', 'cjs/src/connection.js']) {
  const target = path.join(root, file);
  let text = fs.readFileSync(target, 'utf8');
  if (text.includes(MARK)) continue; // already patched
  for (const [before, after] of edits) {
    if (!text.includes(before)) {
      console.error(`patch-postgres: ${file} no longer contains the code this patch expects:\n${before}`);
      process.exit(1);
    }
    text = text.replace(before, after);
  }
  fs.writeFileSync(target, text);
}
console.log('patch-postgres: guarded nextWrite in postgres.js');
