-- Start of a plan: empty the scratch tables the plan is built in.
DELETE FROM passkit_sync_work_messages;
DELETE FROM passkit_sync_work_coupons;
DELETE FROM passkit_sync_work_desired;
