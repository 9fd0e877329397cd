-- PostgreSQL only: the checkpoints of the guests a run recomputes are read by key.
CREATE INDEX IF NOT EXISTS ix_loyalty_guest_checkpoints_guest ON loyalty_guest_checkpoints (guest_id);
