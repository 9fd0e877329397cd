-- PostgreSQL-only indexes of the webhook and re-engagement tables: ingest recomputes the pass
-- activity of the members a batch touches by key (DuckDB scans its columnar tables).
CREATE INDEX IF NOT EXISTS ix_pass_events_member ON pass_events (member_external_id);
CREATE INDEX IF NOT EXISTS ix_pass_events_pass ON pass_events (pass_id);
CREATE INDEX IF NOT EXISTS ix_pass_events_delivery ON pass_events (delivery_id);
CREATE INDEX IF NOT EXISTS ix_reengagement_actions_due ON reengagement_actions (due_on);
CREATE INDEX IF NOT EXISTS ix_reengagement_audience_planned ON reengagement_audience (planned_on);
