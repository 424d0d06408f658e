#!/bin/sh
# Apply the SQL migrations to DATABASE_URL: every migrations/*.sql in lexical
# order, each once, each in one transaction with psql -v ON_ERROR_STOP=1.
# schema_migrations records what was applied (file name and SHA-256), so a
# rerun applies only new files and is safe at any time; the files are also
# idempotent by themselves, so one that changed after it was applied is
# applied again (with a warning). An advisory lock serialises two runs.
#
#   DATABASE_URL=postgresql://... deploy/migrate.sh [DIR]
#
# DIR defaults to $MIGRATIONS_DIR, else the migrations/ folder beside deploy/.
# It waits up to MIGRATE_WAIT_S seconds (default 60) for the database to
# accept connections. Used by the compose file, the Kubernetes Job and the
# systemd units; needs only psql and sha256sum.
set -eu

: "${DATABASE_URL:?DATABASE_URL must be set}"
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${MIGRATIONS_DIR:-$here/../migrations}}
wait_s=${MIGRATE_WAIT_S:-60}
# A fixed key for pg_advisory_xact_lock, shared by every run of this script.
lock=7210385

# Lexical order means bytes, whatever the image's locale; the files are UTF-8 whatever it is, too.
LC_ALL=C
PGCLIENTENCODING=UTF8
PGAPPNAME=gcal-migrate
export LC_ALL PGCLIENTENCODING PGAPPNAME
psql_run() {
	psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc -d "$DATABASE_URL" "$@"
}

log() {
	printf 'migrate: %s\n' "$*" >&2
}

if [ ! -d "$dir" ]; then
	log "no migrations directory at $dir"
	exit 66
fi

waited=0
until psql_run -c 'SELECT 1' >/dev/null 2>&1; do
	if [ "$waited" -ge "$wait_s" ]; then
		log "the database did not accept connections within ${wait_s}s:"
		psql_run -c 'SELECT 1' >/dev/null || exit 69
	fi
	sleep 1
	waited=$((waited + 1))
done

psql_run -c "CREATE TABLE IF NOT EXISTS schema_migrations (
	filename    TEXT PRIMARY KEY,
	checksum    TEXT NOT NULL,
	applied_at  TIMESTAMPTZ NOT NULL DEFAULT now())" 2>&1 | grep -v 'already exists, skipping' >&2 || true

applied=0
for file in "$dir"/*.sql; do
	if [ ! -f "$file" ]; then
		log "no .sql files in $dir"
		exit 66
	fi
	name=$(basename "$file")
	sum=$(sha256sum "$file" | cut -d' ' -f1)
	recorded=$(printf "SELECT checksum FROM schema_migrations WHERE filename = :'name';\n" |
		psql_run -At -v name="$name" -f -)
	if [ "$recorded" = "$sum" ]; then
		continue
	fi
	if [ -n "$recorded" ]; then
		log "$name changed since it was applied; applying it again (migrations are idempotent)"
	fi
	log "applying $name"
	{
		printf 'SELECT pg_advisory_xact_lock(%s);\n' "$lock"
		cat "$file"
		printf "\nINSERT INTO schema_migrations (filename, checksum) VALUES (:'name', :'sum')"
		printf " ON CONFLICT (filename) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now();\n"
	} | psql_run -1 -v name="$name" -v sum="$sum" -f - >/dev/null
	applied=$((applied + 1))
done
log "database is up to date ($applied applied)"
