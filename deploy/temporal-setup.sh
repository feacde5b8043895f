#!/bin/sh
# One-shot job (temporalio/admin-tools image): create or upgrade Temporal's two PostgreSQL
# schemas, `temporal` and `temporal_visibility`. Safe to run on every start:
#   create-database  ignores a database that already exists,
#   setup-schema     only writes the version tables when they are missing (version 0.0),
#   update-schema    applies just the versioned steps newer than the recorded version,
# so the same job also upgrades the schema after the server image is bumped.
#
# Environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by temporal-sql-tool
# itself, kept off the command line), TEMPORAL_DB, TEMPORAL_VISIBILITY_DB.
set -eu

: "${SQL_HOST:?SQL_HOST is required}"
: "${SQL_USER:?SQL_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
SQL_PORT="${SQL_PORT:-5432}"
TEMPORAL_DB="${TEMPORAL_DB:-temporal}"
TEMPORAL_VISIBILITY_DB="${TEMPORAL_VISIBILITY_DB:-temporal_visibility}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" "$@"
}

setup() {
    db=$1
    versioned=$2
    echo "== $db: create database (if missing)"
    # postgres-init.sql normally created it already. Should this step fail all the same,
    # go on: setup-schema below fails loudly if the database is really not there.
    sql_tool --db "$db" create-database \
        || echo "warning: create-database $db failed; trying the schema anyway" >&2
    echo "== $db: version tables"
    sql_tool --db "$db" setup-schema -v 0.0
    echo "== $db: apply versioned schema from $versioned"
    sql_tool --db "$db" update-schema -d "$versioned"
}

setup "$TEMPORAL_DB" "$SCHEMA_ROOT/temporal/versioned"
setup "$TEMPORAL_VISIBILITY_DB" "$SCHEMA_ROOT/visibility/versioned"
echo "Temporal schema is up to date."
