#!/usr/bin/env bash
# Lifecycle self-test of the launcher (server.js), against real processes:
#   a) SIGTERM to the launcher: web, worker and redis-server all gone within a
#      few seconds, exit code 0;
#   b) SIGTERM to the whole process group (what tokenproof sends): same;
#   c) SIGKILL to the launcher only: within a few seconds no child is left
#      (setpriv --pdeathsig), nothing listens on its Redis port;
# and that the children share the launcher's process group and Redis wrote no
# file. Needs node_modules (npm ci), redis-server, setpriv, and either
# DATABASE_URL or the repository's tokenproof (a throwaway PostgreSQL).
#
#   bash test/lifecycle.sh          # from foreign/node-bullmq
set -u

HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOKENPROOF=${TOKENPROOF:-$REPO/.venv/bin/tokenproof}
WORK=$(mktemp -d)
PASSED=0
FAILED=0
PG_PID=""
SVC_PID=""

ok() { echo "PASS  $*"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL  $*"; FAILED=$((FAILED + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
none_alive() { local p; for p in "$@"; do alive "$p" && return 1; done; return 0; }

# wait_until SECONDS command...: true as soon as the command is.
wait_until() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  while [ "$(date +%s%N)" -lt "$deadline" ]; do "$@" && return 0; sleep 0.05; done
  "$@"
}

cleanup() {
  [ -n "$SVC_PID" ] && kill -KILL -- "-$SVC_PID" 2>/dev/null
  if [ -n "$PG_PID" ]; then
    kill -TERM "$PG_PID" 2>/dev/null
    wait "$PG_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# ---------------------------------------------------------------- PostgreSQL
if [ -z "${DATABASE_URL:-}" ]; then
  "$TOKENPROOF" postgres --json > "$WORK/pg.json" 2> "$WORK/pg.err" &
  PG_PID=$!
  wait_until 60 grep -q '"url"' "$WORK/pg.json" || { echo "PostgreSQL did not start:"; cat "$WORK/pg.err"; exit 2; }
  DATABASE_URL=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url)' "$WORK/pg.json")
  echo "throwaway PostgreSQL: pid $PG_PID"
fi
export DATABASE_URL
export JWT_SECRET=lifecycle-secret STRIPE_SECRET_KEY=sk_test_lifecycle
export STRIPE_API_BASE=http://127.0.0.1:9 STRIPE_WEBHOOK_SECRET=whsec_lifecycle
unset REDIS_URL TOKENPROOF_DEFECT

# ------------------------------------------------------------------ helpers
# node, not curl: a fresh machine has Node (the service needs it) but maybe no curl.
healthy() {
  node -e 'require("http").get("http://127.0.0.1:" + process.env.PORT + "/health",
    (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1))'
}
children_of() { pgrep -P "$1" | sort -n | tr '\n' ' '; }
redis_on_port() { pgrep -f "redis-server 127.0.0.1:$1" >/dev/null; }
no_redis_on_port() { ! redis_on_port "$1"; }
launcher_gone() { ! alive "$SVC_PID"; }

# start: the service in a new session (as tokenproof starts it: the launcher
# leads its own process group), until /health answers 200.
start() {
  PORT=$(free_port); export PORT
  LOG="$WORK/service-$1.log"
  setsid node "$HERE/server.js" > "$LOG" 2>&1 &
  SVC_PID=$!
  if ! wait_until 60 healthy; then
    bad "$1: /health 200 within 60 s"; tail -20 "$LOG"; return 1
  fi
  ok "$1: /health 200 (launcher pid $SVC_PID)"
  CHILDREN=$(children_of "$SVC_PID")
  local n; n=$(echo "$CHILDREN" | wc -w)
  check "$1: launcher has 3 children (redis, worker, web): $CHILDREN" [ "$n" -eq 3 ]
  local c same=1
  for c in $CHILDREN; do [ "$(ps -o pgid= -p "$c" | tr -d ' ')" = "$SVC_PID" ] || same=0; done
  check "$1: every child is in the launcher's process group $SVC_PID" [ "$same" = 1 ]
  REDIS_PORT=$(ps -o args= -p $CHILDREN | sed -n 's/.*redis-server 127\.0\.0\.1:\([0-9]*\).*/\1/p' | head -1)
  check "$1: redis-server runs on 127.0.0.1:${REDIS_PORT:-?}" [ -n "$REDIS_PORT" ]
  return 0
}

finished() { # the launcher's exit code once it is reaped
  wait "$SVC_PID" 2>/dev/null
}

before_files=$(ls -A "$HERE")

# ------------------------------------------- a) SIGTERM to the launcher only
if start sigterm; then
  kill -TERM "$SVC_PID"
  check "sigterm: launcher exits within 10 s" wait_until 10 launcher_gone
  finished; rc=$?
  check "sigterm: exit code 0 (got $rc)" [ "$rc" -eq 0 ]
  # shellcheck disable=SC2086
  check "sigterm: web, worker, redis-server gone within 3 s" wait_until 3 none_alive $CHILDREN
  check "sigterm: nothing on redis port $REDIS_PORT" wait_until 3 no_redis_on_port "$REDIS_PORT"
fi
SVC_PID=""

# ------------------------------- b) SIGTERM to the group (what tokenproof does)
if start group-sigterm; then
  kill -TERM -- "-$SVC_PID"
  check "group-sigterm: launcher exits within 10 s" wait_until 10 launcher_gone
  finished; rc=$?
  check "group-sigterm: exit code 0 (got $rc)" [ "$rc" -eq 0 ]
  # shellcheck disable=SC2086
  check "group-sigterm: web, worker, redis-server gone within 3 s" wait_until 3 none_alive $CHILDREN
fi
SVC_PID=""

# --------------------------------------------- c) SIGKILL the launcher only
if start sigkill; then
  kill -KILL "$SVC_PID"
  finished
  # shellcheck disable=SC2086
  check "sigkill: no child of the killed launcher left within 5 s ($CHILDREN)" wait_until 5 none_alive $CHILDREN
  check "sigkill: nothing on redis port $REDIS_PORT" wait_until 3 no_redis_on_port "$REDIS_PORT"
  # shellcheck disable=SC2086
  left=$(ps -o pid=,stat=,args= -p $CHILDREN 2>/dev/null | awk '$2 !~ /^Z/')
  [ -n "$left" ] && echo "      still running: $left"
fi
SVC_PID=""

after_files=$(ls -A "$HERE")
check "redis-server wrote no file into the service folder" [ "$before_files" = "$after_files" ]
check "no dump.rdb / appendonly files in $(node -p 'require("os").tmpdir()')" \
  bash -c '! ls "$(node -p "require(\"os\").tmpdir()")" | grep -qE "^(dump\.rdb|appendonly)"'

echo "lifecycle: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
