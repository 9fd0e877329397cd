-- PostgreSQL-only indexes for the staging tables (DuckDB scans without them).
CREATE INDEX IF NOT EXISTS ix_stg_orders_part ON stg_orders (location_id, business_date);
CREATE INDEX IF NOT EXISTS ix_stg_checks_part ON stg_checks (location_id, business_date);
CREATE INDEX IF NOT EXISTS ix_stg_payments_part ON stg_payments (location_id, business_date);
CREATE INDEX IF NOT EXISTS ix_stg_payments_id ON stg_payments (location_id, payment_id);
CREATE INDEX IF NOT EXISTS ix_stg_item_lines_part ON stg_item_lines (location_id, business_date);
CREATE INDEX IF NOT EXISTS ix_stg_item_lines_check ON stg_item_lines (check_id);
CREATE INDEX IF NOT EXISTS ix_stg_modifier_lines_part ON stg_modifier_lines (location_id, business_date);
CREATE INDEX IF NOT EXISTS ix_stg_rejected_rows_part ON stg_rejected_rows (location_id, business_date);
