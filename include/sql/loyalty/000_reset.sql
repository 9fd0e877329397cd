-- Full recomputation: forget every derived loyalty table so the run rebuilds it from staging.
-- Kept: the ledger (its derived reversal and expiry entries are corrected by 065 and 085),
-- issued coupons, re-engagements, the member registry (externalIds never change), the phone
-- cache and what PassKit reported.
DELETE FROM loyalty_checks;
DELETE FROM loyalty_check_rewards;
DELETE FROM loyalty_refunds;
DELETE FROM loyalty_identifiers;
DELETE FROM loyalty_guests;
DELETE FROM loyalty_partitions;
DELETE FROM guest_spend;
DELETE FROM pass_states;
DELETE FROM loyalty_guest_checkpoints;
