'use strict';

// How the web and the worker process live and die: one start-up (log role,
// unhandled rejections logged, defects announced, migrations), one stop on
// SIGTERM/SIGINT with a hard exit 5 s later, and a second guard besides the
// PR_SET_PDEATHSIG the launcher arms through setpriv: when the launcher is
// gone (our parent changed), exit.

const logger = require('./logger');

const STOP_GRACE_MS = 5000;

function exitWithLauncher() {
  const launcher = Number(process.env.TOKEN_API_LAUNCHER_PID || 0);
  if (!launcher) return;
  setInterval(() => {
    if (process.ppid !== launcher) {
      logger.error('the launcher is gone: exiting', { launcher });
      process.exit(1);
    }
  }, 500).unref();
}

/**
 * Run one of the service's processes. `start()` brings it up and returns its
 * `stop()`, which releases what it holds; the process exits when that is done,
 * or STOP_GRACE_MS after the signal, whichever comes first.
 */
function runProcess(role, start) {
  logger.setRole(role);
  process.on('unhandledRejection', (reason) => {
    logger.error('unhandled rejection', { err: reason instanceof Error ? reason : new Error(String(reason)) });
  });
  const boot = async () => {
    // Required here, after setRole (they log as they load), so that a bad
    // setting is logged as this process failing to start.
    const { ACTIVE } = require('./defects');
    const { migrate } = require('./db');
    exitWithLauncher();
    if (ACTIVE.length) logger.warn('DEFECTS SWITCHED ON', { defects: ACTIVE });
    await migrate();
    const stop = await start();
    let stopping = false;
    const onSignal = async (signal) => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping', { signal });
      setTimeout(() => process.exit(0), STOP_GRACE_MS).unref();
      await stop();
      process.exit(0);
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  };
  boot().catch((err) => {
    logger.error(`${role} failed to start`, { err });
    process.exit(1);
  });
}

module.exports = { runProcess };
