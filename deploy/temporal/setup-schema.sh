#!/bin/sh
# Creates Temporal's two databases on the compose PostgreSQL and brings their schemas to the
# version this admin-tools image ships (run by docker-compose.yml's `temporal-schema` job
# before the server starts). Safe to run again: an existing database is kept, a schema at its
# version or newer is left as it is, so an image upgrade only adds the newer versions.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS names the PostgreSQL host}"
: "${POSTGRES_USER:?POSTGRES_USER names the PostgreSQL role}"
: "${SQL_PASSWORD:?SQL_PASSWORD is the role password}"
port="${DB_PORT:-5432}"
schemas=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"
}

for db in temporal:temporal temporal_visibility:visibility; do
    name="${db%%:*}"
    dir="${db#*:}"
    echo "schema of database $name"
    sql_tool --db "$name" create
    sql_tool --db "$name" setup-schema -v 0.0
    sql_tool --db "$name" update-schema -d "$schemas/$dir/versioned"
done
echo "Temporal's schemas are up to date"
