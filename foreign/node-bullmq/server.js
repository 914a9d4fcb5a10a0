'use strict';

// Launcher: one command (`node server.js`) starts the whole service:
//   1. redis-server on 127.0.0.1 and a free port, no persistence (the queue's
//      broker; every acknowledged event is durable in PostgreSQL, not here);
//   2. the worker process (src/worker/main.js): BullMQ consumer, sweeper;
//   3. the web process (src/web/main.js): HTTP on $PORT, the webhook producer.
// Every child runs under `setpriv --pdeathsig KILL`, so the kernel kills it
// when the launcher dies, SIGKILL included, and stays in the launcher's
// process group, so a signal to the group reaches all of them.
// SIGTERM/SIGINT: web and worker stop first (in-flight work ends), then Redis;
// exit 0. A child that dies on its own takes the service down (exit 1): a
// supervisor (or the harness) restarts it whole.

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const readline = require('readline');

const logger = require('./src/logger');

logger.setRole('launcher');

const STOP_CHILDREN_MS = 6000;
const STOP_REDIS_MS = 2000;
const REDIS_START_MS = 10_000;

function findExecutable(name) {
  for (const dir of (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** One PING over a plain socket: true when Redis answers +PONG. */
function redisPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Launcher {
  constructor() {
    this.children = new Map(); // name -> ChildProcess
    this.stopping = false;
    this.exitCode = 0;
    this.setpriv = findExecutable('setpriv');
  }

  /** Start argv as a child that dies with us and shares our process group. */
  spawnChild(name, argv, { env, pipeOutput = false, critical = true }) {
    const [command, args] = [this.setpriv, ['--pdeathsig', 'KILL', '--', ...argv]];
    const child = spawn(command, args, {
      cwd: __dirname,
      env,
      stdio: ['ignore', pipeOutput ? 'pipe' : 'inherit', pipeOutput ? 'pipe' : 'inherit'],
      // detached: false (default): same process group as the launcher.
    });
    if (pipeOutput) {
      // Redis's own log lines, re-emitted as JSON lines.
      for (const stream of [child.stdout, child.stderr]) {
        readline.createInterface({ input: stream }).on('line', (line) => {
          if (line.trim()) logger.info('redis-server', { line: line.trim() });
        });
      }
    }
    // Critical: its death stops the service (set once a start-up retry is over).
    child.critical = critical;
    this.children.set(name, child);
    child.on('error', (err) => logger.error('cannot start child', { child: name, err }));
    child.on('exit', (code, signal) => {
      this.children.delete(name);
      const fields = { child: name, childPid: child.pid, code, signal };
      if (this.stopping || !child.critical) {
        logger.info('child stopped', fields);
      } else {
        logger.error('child exited on its own: stopping the service', fields);
        this.stop(1);
      }
    });
    logger.info('child started', { child: name, childPid: child.pid });
    return child;
  }

  async startRedis() {
    const redisServer = findExecutable('redis-server');
    if (!redisServer) throw new Error('redis-server not found on PATH (apt-get install redis-server)');
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      const port = await freePort();
      const child = this.spawnChild('redis', [
        redisServer,
        '--bind', '127.0.0.1',
        '--port', String(port),
        '--save', '',
        '--appendonly', 'no',
        '--dir', os.tmpdir(),
        '--daemonize', 'no',
        '--protected-mode', 'yes',
        '--maxmemory-policy', 'noeviction',
        '--loglevel', 'warning',
        '--logfile', '',
      ], { env: process.env, pipeOutput: true, critical: false });
      const deadline = Date.now() + REDIS_START_MS;
      while (Date.now() < deadline && !this.stopping && child.exitCode === null && child.signalCode === null) {
        if (await redisPing(port)) {
          child.critical = true;
          logger.info('redis ready', { port, childPid: child.pid });
          return `redis://127.0.0.1:${port}`;
        }
        await sleep(50);
      }
      if (this.stopping) return null;
      if (child.exitCode === null && child.signalCode === null) {
        throw new Error(`redis-server did not answer PING within ${REDIS_START_MS} ms`);
      }
      // It exited (port taken between our probe and its bind?): another port.
      logger.warn('redis-server exited at start, retrying', { port, attempt });
    }
    throw new Error('redis-server would not start');
  }

  async start() {
    if (!this.setpriv) {
      throw new Error('setpriv (util-linux) not found: children could outlive a killed launcher');
    }
    // A wrong configuration or defect name stops us here, before any child.
    require('./src/config');
    require('./src/defects');

    let redisUrl = process.env.REDIS_URL || '';
    if (redisUrl) logger.info('using the Redis at REDIS_URL', { redis: redisUrl.replace(/\/\/[^@]*@/, '//***@') });
    else redisUrl = await this.startRedis();
    if (this.stopping || !redisUrl) return;

    const env = { ...process.env, REDIS_URL: redisUrl, TOKEN_API_LAUNCHER_PID: String(process.pid) };
    const node = process.execPath;
    this.spawnChild('worker', [node, path.join(__dirname, 'src/worker/main.js')], { env });
    this.spawnChild('web', [node, path.join(__dirname, 'src/web/main.js')], { env });
  }

  signal(name, sig) {
    const child = this.children.get(name);
    if (child) {
      try {
        child.kill(sig);
      } catch {
        // already gone
      }
    }
  }

  async waitGone(names, ms) {
    const deadline = Date.now() + ms;
    while (names.some((n) => this.children.has(n)) && Date.now() < deadline) await sleep(25);
    return names.filter((n) => this.children.has(n));
  }

  async stopGroup(names, ms) {
    for (const name of names) this.signal(name, 'SIGTERM');
    const left = await this.waitGone(names, ms);
    for (const name of left) {
      logger.warn('child ignored SIGTERM: killing it', { child: name });
      this.signal(name, 'SIGKILL');
    }
    await this.waitGone(left, 2000);
  }

  async stop(code) {
    if (this.stopping) return;
    this.stopping = true;
    this.exitCode = code;
    // However the stop goes, the launcher ends; the kernel then kills any
    // child left (pdeathsig).
    setTimeout(() => process.exit(this.exitCode), STOP_CHILDREN_MS + STOP_REDIS_MS + 1500).unref();
    await this.stopGroup(['web', 'worker'], STOP_CHILDREN_MS);
    await this.stopGroup(['redis'], STOP_REDIS_MS);
    logger.info('stopped', { code: this.exitCode });
    process.exit(this.exitCode);
  }
}

const launcher = new Launcher();
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    logger.info('signal received', { signal: sig });
    launcher.stop(0);
  });
}
process.on('uncaughtException', (err) => {
  logger.error('launcher crashed', { err });
  launcher.stop(1);
});

launcher.start().catch((err) => {
  logger.error('start failed', { err });
  launcher.stop(1);
});

