#!/usr/bin/env bash
# Start a PostgreSQL cluster on 127.0.0.1:5432 with a superuser role `itsm`
# (the tests create and drop their own databases).  Idempotent.
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
bin=/usr/lib/postgresql/$version/bin
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main .* online"; then
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
    pg_createcluster "$version" main >/dev/null
  fi
  pg_ctlcluster "$version" main start
fi
for _ in $(seq 1 30); do
  su postgres -c "$bin/pg_isready -q -h 127.0.0.1 -p 5432" && break
  sleep 1
done
su postgres -c "psql -q -p 5432 -d postgres" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'itsm') THEN
    CREATE ROLE itsm LOGIN SUPERUSER PASSWORD 'itsm';
  END IF;
END $$;
SELECT 'CREATE DATABASE itsm OWNER itsm'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'itsm')\gexec
SQL
