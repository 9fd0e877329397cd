-- Empty the scratch tables: at the start of a run (a previous run may have kept them) and
-- before it commits.
DELETE FROM loyalty_work_partitions;
DELETE FROM loyalty_work_checks;
DELETE FROM loyalty_work_history;
DELETE FROM loyalty_work_identities;
DELETE FROM loyalty_work_identifiers;
DELETE FROM loyalty_work_guest_remap;
DELETE FROM loyalty_work_covers;
DELETE FROM loyalty_work_guest_rows;
DELETE FROM loyalty_work_member_rows;
DELETE FROM loyalty_work_member_merges;
DELETE FROM loyalty_work_refunds;
DELETE FROM loyalty_work_refunded_checks;
DELETE FROM loyalty_work_checkpoints;
DELETE FROM loyalty_work_guests;
DELETE FROM loyalty_work_owners;
DELETE FROM loyalty_work_owner_checks;
DELETE FROM loyalty_work_owner_members;
DELETE FROM loyalty_work_absences;
DELETE FROM loyalty_work_balances;
DELETE FROM loyalty_work_owner_states;
DELETE FROM loyalty_work_owner_contacts;
DELETE FROM loyalty_work_derived_entries;
DELETE FROM loyalty_work_earn_entries;
DELETE FROM loyalty_work_unfrozen_members;
DELETE FROM loyalty_work_member_entries;
DELETE FROM loyalty_work_guest_spend;
