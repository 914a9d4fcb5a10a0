'use strict';

// Known defects, switched on with TOKENPROOF_DEFECT=<name>[,<name>...] so that
// a verification harness can be shown to catch them. Unset = the correct build.
// The names and descriptions live in defects.json; an unknown name stops the
// service at start (a typo must not silently run the correct build).

const fs = require('fs');
const path = require('path');

const KNOWN = Object.keys(
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'defects.json'), 'utf8')),
);

const ACTIVE = (process.env.TOKENPROOF_DEFECT || '')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);

const unknown = ACTIVE.filter((name) => !KNOWN.includes(name));
if (unknown.length) {
  throw new Error(`TOKENPROOF_DEFECT names unknown defect(s) ${unknown.join(', ')}; known: ${KNOWN.join(', ')}`);
}

/** True when the named defect is switched on. */
function defect(name) {
  if (!KNOWN.includes(name)) throw new Error(`unknown defect name in code: ${name}`);
  return ACTIVE.includes(name);
}

module.exports = { defect, ACTIVE };
