-- Run once by the postgres image, on the first start of an empty data volume
-- (/docker-entrypoint-initdb.d). Later starts skip it: to change a password afterwards,
-- use ALTER ROLE.
--
-- One role per system, each owning its own databases:
--   o2o       -> o2o                            (the application)
--   temporal  -> temporal, temporal_visibility  (Temporal; its schema is set up by the
--                temporal-admin-tools job, which runs temporal-sql-tool as this role.
--                CREATEDB lets that tool's idempotent `create-database` step see that
--                the database already exists instead of failing on permissions.)
-- Passwords come from the container's environment (psql 15+ \getenv); an unset one
-- leaves the variable unset and stops the script with an error.

\set ON_ERROR_STOP on
\getenv o2o_password O2O_DB_PASSWORD
\getenv temporal_password TEMPORAL_DB_PASSWORD

CREATE ROLE o2o LOGIN PASSWORD :'o2o_password';
CREATE DATABASE o2o OWNER o2o;

CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
