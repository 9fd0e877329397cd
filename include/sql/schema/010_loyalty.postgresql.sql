-- PostgreSQL-only indexes of the loyalty tables: an incremental run reads the rows of the few
-- guests it recomputes by key (DuckDB scans its columnar tables without them).
CREATE INDEX IF NOT EXISTS ix_loyalty_checks_check ON loyalty_checks (location_id, check_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_checks_guest ON loyalty_checks (guest_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_checks_date ON loyalty_checks (business_date);
-- (No reader looks checks up by covered_by since 120 reads the run's work tables: the index
-- earlier versions made only cost every check written.)
DROP INDEX IF EXISTS ix_loyalty_checks_covered;
CREATE INDEX IF NOT EXISTS ix_loyalty_check_rewards_check ON loyalty_check_rewards (location_id, check_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_refunds_payment ON loyalty_refunds (location_id, payment_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_refunds_check ON loyalty_refunds (location_id, check_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_refunds_date ON loyalty_refunds (refund_date);
CREATE INDEX IF NOT EXISTS ix_loyalty_phone_numbers_raw ON loyalty_phone_numbers (raw_phone, region);
CREATE INDEX IF NOT EXISTS ix_loyalty_identifiers_identifier ON loyalty_identifiers (identifier);
CREATE INDEX IF NOT EXISTS ix_loyalty_identifiers_guest ON loyalty_identifiers (guest_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_guests_guest ON loyalty_guests (guest_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_guests_last_visit ON loyalty_guests (last_visit_on);
CREATE INDEX IF NOT EXISTS ix_loyalty_members_external ON loyalty_members (external_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_members_guest ON loyalty_members (guest_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_ledger_check ON loyalty_ledger (location_id, check_id);
CREATE INDEX IF NOT EXISTS ix_loyalty_ledger_member ON loyalty_ledger (external_id);
-- the entries after the previous run's day of the guests replayed from their checkpoint (080)
CREATE INDEX IF NOT EXISTS ix_loyalty_ledger_date ON loyalty_ledger (entry_date);
CREATE INDEX IF NOT EXISTS ix_loyalty_partitions_partition ON loyalty_partitions (location_id, business_date);
CREATE INDEX IF NOT EXISTS ix_guest_spend_guest ON guest_spend (guest_id);
CREATE INDEX IF NOT EXISTS ix_pass_states_external ON pass_states (external_id);
CREATE INDEX IF NOT EXISTS ix_pass_activity_member ON pass_activity (member_external_id);
CREATE INDEX IF NOT EXISTS ix_stg_loads_partition ON stg_loads (location_id, business_date);
-- A run's own rows, counted for its summary (the ledger alone holds a row per check).
CREATE INDEX IF NOT EXISTS ix_loyalty_ledger_run ON loyalty_ledger (run_id);
CREATE INDEX IF NOT EXISTS ix_pass_coupons_run ON pass_coupons (run_id);
CREATE INDEX IF NOT EXISTS ix_reengagements_run ON reengagements (run_id);
