'use strict';

// One JSON object per line on stdout. Every process of the service logs
// through this, tagged with its role (launcher, web, worker, redis).

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 };
const threshold = LEVELS[process.env.LOG_LEVEL] || LEVELS.info;
let role = 'token-api';

function describe(err) {
  if (!(err instanceof Error)) return err;
  const out = { name: err.name, message: err.message };
  if (err.code !== undefined) out.code = err.code;
  if (err.type !== undefined) out.type = err.type;
  if (err.statusCode !== undefined) out.statusCode = err.statusCode;
  if (err.stack) out.stack = err.stack.split('\n').slice(0, 6).join('\n');
  return out;
}

function write(level, msg, fields = {}) {
  if (LEVELS[level] < threshold) return;
  const line = { t: new Date().toISOString(), lvl: level, svc: role, pid: process.pid, msg };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) line[key] = describe(value);
  }
  try {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  } catch {
    // stdout gone (the harness closed the log): nothing left to tell.
  }
}

module.exports = {
  setRole: (name) => {
    role = name;
  },
  debug: (msg, fields) => write('debug', msg, fields),
  info: (msg, fields) => write('info', msg, fields),
  warn: (msg, fields) => write('warn', msg, fields),
  error: (msg, fields) => write('error', msg, fields),
};
