#!/bin/sh
# Runs once when the postgres container initialises its data directory.
# The schema owner is POSTGRES_USER (lucy), whose password is POSTGRES_PASSWORD. The application
# connects as lucy_app, neither owner nor superuser, so row-level security applies to it; its
# password is LUCY_APP_DB_PASSWORD (both come from .env: compose refuses to start without them).
# Migrations grant lucy_app_rw its rights.
set -eu
: "${LUCY_APP_DB_PASSWORD:?set LUCY_APP_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="$LUCY_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE lucy_app_rw NOLOGIN;
CREATE ROLE lucy_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'app_password' IN ROLE lucy_app_rw;
SQL
