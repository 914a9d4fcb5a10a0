'use strict';

// Known defects, switched on one at a time with TOKENPROOF_DEFECT=<name> so
// that a verification harness can be shown to catch them. Unset = correct.
const fs = require('fs');
const path = require('path');

const KNOWN = Object.keys(
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'defects.json'), 'utf8')),
);
const ACTIVE = process.env.TOKENPROOF_DEFECT || '';

if (ACTIVE && !KNOWN.includes(ACTIVE)) {
  throw new Error(`TOKENPROOF_DEFECT=${ACTIVE} is not one of: ${KNOWN.join(', ')}`);
}

/** True when the named defect is switched on. */
function defect(name) {
  if (!KNOWN.includes(name)) throw new Error(`unknown defect name in code: ${name}`);
  return ACTIVE === name;
}

module.exports = { defect, ACTIVE };
