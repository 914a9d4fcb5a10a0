'use strict';

// JSON-lines logger on stdout: one object per line, our own field names.
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 };
const threshold = LEVELS[process.env.LOG_LEVEL] || LEVELS.info;

function write(level, msg, fields) {
  if (LEVELS[level] < threshold) return;
  const line = { t: new Date().toISOString(), lvl: level, svc: 'token-api', msg, ...fields };
  if (fields && fields.err instanceof Error) {
    line.err = { name: fields.err.name, code: fields.err.code, message: fields.err.message };
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

module.exports = {
  debug: (msg, fields) => write('debug', msg, fields),
  info: (msg, fields) => write('info', msg, fields),
  warn: (msg, fields) => write('warn', msg, fields),
  error: (msg, fields) => write('error', msg, fields),
};
