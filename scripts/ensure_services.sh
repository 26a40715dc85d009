#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the test suite uses are reachable: start them when they are
# installed but stopped, and say exactly what is missing otherwise.
# MINIRAG_TEST_DATABASE_URL / MINIRAG_TEST_REDIS_URL point the suite at other servers (not checked here).
set -uo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_HOST=127.0.0.1 REDIS_PORT=6379

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # host port seconds
  for _ in $(seq 1 "$3"); do port_open "$1" "$2" && return 0; sleep 1; done
  return 1
}

ensure_postgres() {
  [ -n "${MINIRAG_TEST_DATABASE_URL:-}" ] && return 0
  port_open $PG_HOST $PG_PORT && return 0
  echo "PostgreSQL is not answering on $PG_HOST:$PG_PORT; trying to start it..."
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
        su postgres -c "pg_ctlcluster $version main start" 2>/dev/null || true
    done
  elif command -v service >/dev/null 2>&1; then
    service postgresql start >/dev/null 2>&1 || true
  else
    echo "error: PostgreSQL is not installed. Install it (apt-get install -y postgresql) and allow local" >&2
    echo "       trust auth for user 'postgres' on 127.0.0.1:5432, or set MINIRAG_TEST_DATABASE_URL." >&2
    return 1
  fi
  wait_for $PG_HOST $PG_PORT 30 && { echo "PostgreSQL started."; return 0; }
  echo "error: PostgreSQL is installed but could not be started on $PG_HOST:$PG_PORT." >&2
  return 1
}

ensure_redis() {
  [ -n "${MINIRAG_TEST_REDIS_URL:-}" ] && return 0
  port_open $REDIS_HOST $REDIS_PORT && return 0
  echo "Redis is not answering on $REDIS_HOST:$REDIS_PORT; trying to start it..."
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $REDIS_PORT --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 ||
      redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no >/dev/null 2>&1
  else
    echo "error: Redis is not installed. Install it (apt-get install -y redis-server) or set MINIRAG_TEST_REDIS_URL." >&2
    return 1
  fi
  wait_for $REDIS_HOST $REDIS_PORT 15 && { echo "Redis started."; return 0; }
  echo "error: Redis is installed but could not be started on $REDIS_HOST:$REDIS_PORT." >&2
  return 1
}

status=0
ensure_postgres || status=1
ensure_redis || status=1
exit $status
