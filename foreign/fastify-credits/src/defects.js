// Known defects, switched on with TOKENPROOF_DEFECT=<name>[,<name>...] so
// tokenproof can show it catches them. The catalogue is defects.json; a name
// that is not in it refuses to start (a typo must not run the correct build
// and pass for the defect).

import { readFileSync } from 'node:fs';

const catalogue = JSON.parse(readFileSync(new URL('../defects.json', import.meta.url), 'utf8'));

export const KNOWN_DEFECTS = Object.freeze(Object.keys(catalogue));

const wanted = (process.env.TOKENPROOF_DEFECT || '')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);

export class UnknownDefectError extends Error {}

/** Throws when TOKENPROOF_DEFECT names an unknown defect; returns the active ones joined (or null). */
export function activeDefect() {
  const unknown = wanted.filter((name) => !Object.hasOwn(catalogue, name));
  if (unknown.length) {
    throw new UnknownDefectError(
      `TOKENPROOF_DEFECT=${unknown.join(',')} is not a known defect; known: ${KNOWN_DEFECTS.join(', ')}`,
    );
  }
  return wanted.length ? wanted.join(',') : null;
}

/** True when the named defect is switched on. */
export function defect(name) {
  if (!Object.hasOwn(catalogue, name)) throw new Error(`defect(${name}): not in defects.json`);
  return wanted.includes(name);
}
