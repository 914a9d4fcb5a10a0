'use strict';

// A second guard for the web and worker processes, besides the
// PR_SET_PDEATHSIG the launcher arms through setpriv: when the launcher is
// gone (our parent changed), exit.

const logger = require('./logger');

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

module.exports = { exitWithLauncher };
