'use strict';

// Known defects, switched on with TOKENPROOF_DEFECT=<name>[,<name>...] so that
// a verification harness can be shown to catch them. Unset = correct.
const fs = require('fs');
const path = require('path');

const KNOWN = Object.keys(
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'defects.json'), 'utf8')),
);
const ACTIVE = process.env.TOKENPROOF_DEFECT || '';
const ON = ACTIVE.split(',').map((name) => name.trim()).filter(Boolean);

for (const name of ON) {
  if (!KNOWN.includes(name)) {
    throw new Error(`TOKENPROOF_DEFECT: ${name} is not one of: ${KNOWN.join(', ')}`);
  }
}

/** True when the named defect is switched on. */
function defect(name) {
  if (!KNOWN.includes(name)) throw new Error(`unknown defect name in code: ${name}`);
  return ON.includes(name);
}

module.exports = { defect, ACTIVE };
