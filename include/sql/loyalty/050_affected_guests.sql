-- Guests whose loyalty state this run recomputes: every guest in a full recomputation,
-- otherwise those with new checks or merges, new refunds or redemptions, and those whose
-- time-based state moves between the previous run's day and this one (a check leaving the
-- tier window, an inactivity threshold reached, a refund dated in between).
INSERT INTO loyalty_work_guests (guest_id)
SELECT DISTINCT affected.guest_id
FROM (
    SELECT g.guest_id FROM loyalty_guests g WHERE :full_run
    UNION ALL
    SELECT guest_id FROM loyalty_work_guest_rows
    UNION ALL
    SELECT c.guest_id
    FROM (SELECT f.location_id, f.check_id
          FROM loyalty_work_refunds r
          JOIN loyalty_refunds f
            ON f.location_id = r.location_id AND f.payment_id = r.payment_id
          UNION
          SELECT f.location_id, f.check_id
          FROM loyalty_refunds f
          WHERE f.refund_date > CAST(:previous_as_of AS DATE)
            AND f.refund_date <= CAST(:as_of AS DATE)) refunded
    JOIN loyalty_checks c
      ON c.location_id = refunded.location_id AND c.check_id = refunded.check_id
    UNION ALL
    SELECT m.guest_id
    FROM passkit_redemptions p
    CROSS JOIN loyalty_program_settings s
    JOIN loyalty_members m ON m.external_id = p.member_external_id
    WHERE CAST((p.recorded_at AT TIME ZONE s.timezone) AS DATE) <= CAST(:as_of AS DATE)
      AND NOT EXISTS (SELECT 1 FROM loyalty_ledger l
                      WHERE l.entry_key = 'redemption|' || p.passkit_event_id)
    UNION ALL
    SELECT c.guest_id
    FROM loyalty_checks c
    CROSS JOIN loyalty_program_settings s
    WHERE c.qualifying
      AND c.business_date > CAST(:previous_as_of AS DATE) - s.window_days
      AND c.business_date <= CAST(:as_of AS DATE) - s.window_days
    UNION ALL
    SELECT g.guest_id
    FROM loyalty_guests g
    CROSS JOIN loyalty_program_settings s
    WHERE (g.last_visit_on + s.reengage_after_days > CAST(:previous_as_of AS DATE)
           AND g.last_visit_on + s.reengage_after_days <= CAST(:as_of AS DATE))
       OR (g.last_visit_on + s.expire_points_after_days > CAST(:previous_as_of AS DATE)
           AND g.last_visit_on + s.expire_points_after_days <= CAST(:as_of AS DATE))
       OR (g.last_visit_on + s.revoke_pass_after_days > CAST(:previous_as_of AS DATE)
           AND g.last_visit_on + s.revoke_pass_after_days <= CAST(:as_of AS DATE))
) affected
WHERE affected.guest_id IS NOT NULL;
