# Sourced by scripts/dev-server and scripts/serve, from the project's directory, with PY set.
#
# use_redis makes REDIS_URL name a Redis that answers, and exports it: the Redis
# REDIS_URL names (default redis://127.0.0.1:6379/0) if it answers, otherwise a
# private redis-server started on a unix socket under var/, with AOF persistence.
# stop_redis stops that private one, if any; the caller traps EXIT with it.

redis_pid=""

redis_answers() {
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
PYEOF
}

stop_redis() {
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    echo "Stopping the private Redis (pid $redis_pid); its data stays in var/redis/."
    kill "$redis_pid" && wait "$redis_pid" 2>/dev/null || true
  fi
}

use_redis() {
  REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  if redis_answers "$REDIS_URL"; then
    echo "Using the Redis at $REDIS_URL."
    export REDIS_URL
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "No Redis answers at $REDIS_URL and redis-server is not installed." >&2
    echo "Install Redis 7 (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)," >&2
    echo "or set REDIS_URL to a Redis you can use, then try again." >&2
    exit 1
  fi
  mkdir -p var/redis
  local socket="$PWD/var/redis.sock"
  echo "No Redis answers at $REDIS_URL; starting a private one on $socket (AOF in var/redis/)."
  # In a process group of its own, so that Ctrl-C in the terminal reaches the
  # server but not Redis, which stop_redis stops once the server has finished.
  set -m
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 --dir "$PWD/var/redis" \
    --appendonly yes --save "" --logfile "$PWD/var/redis/redis.log" \
    --maxmemory-policy noeviction --hash-max-listpack-value 512 &
  redis_pid=$!
  set +m
  REDIS_URL="unix://$socket?db=0"
  for _ in $(seq 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
  redis_answers "$REDIS_URL" || { echo "The private Redis did not start; see var/redis/redis.log." >&2; exit 1; }
  export REDIS_URL
}
