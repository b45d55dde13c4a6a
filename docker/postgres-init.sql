-- Runs once when the postgres container initialises its data directory.
-- The schema owner is POSTGRES_USER (lucy). The application connects as lucy_app: neither
-- owner nor superuser, so row-level security applies; migrations grant lucy_app_rw its rights.
CREATE ROLE lucy_app_rw NOLOGIN;
CREATE ROLE lucy_app LOGIN PASSWORD 'lucy_app' IN ROLE lucy_app_rw;
