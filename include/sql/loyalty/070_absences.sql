-- Qualifying visits of each owner up to its evaluation day, and for the absence after each
-- visit the day each inactivity threshold is reached: visit + N days, when no qualifying
-- visit comes in (visit, visit + N] and that day is not after the evaluation day.
-- The absence is named by the visit day's last check (the expiry entry's natural key).
-- An owner replayed from its checkpoint starts from the checkpoint's last visit; an expiry
-- of that absence on or before the checkpoint is already in the checkpoint's balance.
INSERT INTO loyalty_work_absences (owner_id, visit_on, last_location_id, last_check_id,
                                   next_visit_on, expires_on, revokes_on, reengages_on)
WITH visit_checks AS (
    SELECT c.owner_id, c.business_date, c.location_id, c.check_id,
           ROW_NUMBER() OVER (PARTITION BY c.owner_id, c.business_date
                              ORDER BY c.location_id DESC, c.check_id DESC) AS day_rank
    FROM loyalty_work_owner_checks c
    JOIN loyalty_work_owners o ON o.owner_id = c.owner_id
    WHERE c.qualifying AND c.replayed AND c.business_date <= o.eval_on
),
visits AS (
    SELECT owner_id, business_date AS visit_on, location_id, check_id,
           LEAD(business_date) OVER (PARTITION BY owner_id ORDER BY business_date)
               AS next_visit_on
    FROM (SELECT owner_id, business_date, location_id, check_id
          FROM visit_checks
          WHERE day_rank = 1
          UNION ALL
          SELECT o.owner_id, k.last_visit_on, k.last_location_id, k.last_check_id
          FROM loyalty_work_owners o
          JOIN loyalty_work_checkpoints k ON k.guest_id = o.guest_id
          WHERE o.checkpoint_on IS NOT NULL AND k.last_visit_on IS NOT NULL) replayed
)
SELECT v.owner_id, v.visit_on, v.location_id, v.check_id, v.next_visit_on,
       CASE WHEN (v.next_visit_on IS NULL
                  OR v.next_visit_on > v.visit_on + s.expire_points_after_days)
                 AND v.visit_on + s.expire_points_after_days <= o.eval_on
                 AND (o.checkpoint_on IS NULL
                      OR v.visit_on + s.expire_points_after_days > o.checkpoint_on)
            THEN v.visit_on + s.expire_points_after_days END,
       CASE WHEN (v.next_visit_on IS NULL
                  OR v.next_visit_on > v.visit_on + s.revoke_pass_after_days)
                 AND v.visit_on + s.revoke_pass_after_days <= o.eval_on
            THEN v.visit_on + s.revoke_pass_after_days END,
       CASE WHEN (v.next_visit_on IS NULL
                  OR v.next_visit_on > v.visit_on + s.reengage_after_days)
                 AND v.visit_on + s.reengage_after_days <= o.eval_on
            THEN v.visit_on + s.reengage_after_days END
FROM visits v
JOIN loyalty_work_owners o ON o.owner_id = v.owner_id
CROSS JOIN loyalty_program_settings s;
