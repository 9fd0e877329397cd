-- Replace the pass_activity rows of the members the batch touched (one row per member).
DELETE FROM pass_activity
WHERE member_external_id IN (SELECT member_external_id FROM pass_activity_work);

INSERT INTO pass_activity (member_external_id, pass_id, state, first_installed_at,
                           last_installed_at, last_uninstalled_at, updated_at)
SELECT member_external_id, pass_id, state, first_installed_at, last_installed_at,
       last_uninstalled_at, updated_at
FROM pass_activity_work;
