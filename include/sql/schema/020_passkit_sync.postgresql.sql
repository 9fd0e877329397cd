-- PostgreSQL-only indexes of the PassKit sync tables: the data team reads the log by run and
-- by member; a run finds due rows by state (DuckDB scans its columnar tables without them).
CREATE INDEX IF NOT EXISTS ix_passkit_sync_log_run ON passkit_sync_log (run_id);
CREATE INDEX IF NOT EXISTS ix_passkit_sync_log_member ON passkit_sync_log (external_id, logged_at);
CREATE INDEX IF NOT EXISTS ix_passkit_sync_members_state ON passkit_sync_members (sync_state, next_attempt_at);
CREATE INDEX IF NOT EXISTS ix_passkit_sync_coupons_state ON passkit_sync_coupons (sync_state, next_attempt_at);
CREATE INDEX IF NOT EXISTS ix_passkit_sync_coupons_member ON passkit_sync_coupons (external_id);
