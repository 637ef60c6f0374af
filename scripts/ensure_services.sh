#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback; install and start them when they do not.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
  echo "Installing PostgreSQL and Redis from Debian packages..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
fi

if ! pg_up; then
  echo "Starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
fi
if ! redis_up; then
  echo "Starting Redis..."
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

for _ in $(seq 1 60); do
  if pg_up && redis_up; then break; fi
  sleep 0.5
done
pg_up || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }

# Trust auth on loopback is how these machines come; make sure our role can log in and create databases.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1" >/dev/null 2>&1; then
  su postgres -c "psql -Atc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  export PGPASSWORD=postgres
fi
psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname='visionprefer'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "create database visionprefer" >/dev/null
echo "PostgreSQL and Redis are up."
