-- Guests whose loyalty state this run recomputes: every guest in a full recomputation,
-- otherwise those with new checks or merges, new refunds or redemptions, and those whose
-- time-based state moves between the previous run's day and this one (a check leaving the
-- tier window, an inactivity threshold reached, a refund dated in between).
-- changed_on: the earliest business date of the new facts (a new check, a refund's date
-- before and after this run, a redemption's date); 1900-01-01 for a guest the identity pass
-- rewrote without a new check (a merge); NULL when only time moves its state. A guest whose
-- facts all lie after the previous run's day can be replayed from its checkpoint.
-- The refunded checks are kept with their guests for 060 (one read of loyalty_checks). They
-- are looked for among the checks dated after :recent_after first (most refunds come within
-- weeks of their check; DuckDB reads those row groups only), then, for those not found,
-- among the older ones (none on most days: that read then ends at once).
INSERT INTO loyalty_work_refunded_checks (location_id, check_id, guest_id, business_date,
                                          qualifying, eligible_spend, changed_on,
                                          dated_in_run)
WITH refunded AS (
    SELECT f.location_id, f.check_id, f.refund_date AS changed_on, FALSE AS dated_in_run
    FROM loyalty_work_refunds r
    JOIN loyalty_refunds f
      ON f.location_id = r.location_id AND f.payment_id = r.payment_id
    UNION ALL
    SELECT r.location_id, r.previous_check_id, r.previous_refund_date, FALSE
    FROM loyalty_work_refunds r
    WHERE r.previous_check_id IS NOT NULL
    UNION ALL
    SELECT f.location_id, f.check_id, CAST(NULL AS DATE), TRUE
    FROM loyalty_refunds f
    WHERE f.refund_date > CAST(:previous_as_of AS DATE)
      AND f.refund_date <= CAST(:as_of AS DATE)
),
recent AS (
    SELECT c.location_id, c.check_id, c.guest_id, c.business_date, c.qualifying,
           c.eligible_spend
    FROM loyalty_checks c
    WHERE c.business_date > CAST(:recent_after AS DATE)
      AND EXISTS (SELECT 1 FROM refunded r
                  WHERE r.location_id = c.location_id AND r.check_id = c.check_id)
),
missing AS (
    SELECT DISTINCT r.location_id, r.check_id
    FROM refunded r
    WHERE NOT EXISTS (SELECT 1 FROM recent x
                      WHERE x.location_id = r.location_id AND x.check_id = r.check_id)
),
checks AS (
    SELECT * FROM recent
    UNION ALL
    SELECT c.location_id, c.check_id, c.guest_id, c.business_date, c.qualifying,
           c.eligible_spend
    FROM missing m
    JOIN loyalty_checks c ON c.location_id = m.location_id AND c.check_id = m.check_id
    WHERE c.business_date <= CAST(:recent_after AS DATE)
)
SELECT c.location_id, c.check_id, c.guest_id, c.business_date, c.qualifying,
       c.eligible_spend, r.changed_on, r.dated_in_run
FROM refunded r
JOIN checks c ON c.location_id = r.location_id AND c.check_id = r.check_id;

-- Members joined into another one and not yet frozen by the merge (their pass state), after
-- the run's merges: their guests are replayed whole, they are owners of their own (060).
INSERT INTO loyalty_work_unfrozen_members (external_id, guest_id, enrolled_on, merged_on)
SELECT m.external_id, m.guest_id, m.enrolled_on, m.merged_on
FROM loyalty_members m
WHERE m.merged_into IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM pass_states ps
                  WHERE ps.external_id = m.external_id AND ps.revoked_reason = 'merged');

INSERT INTO loyalty_work_guests (guest_id, changed_on)
SELECT affected.guest_id, MIN(affected.changed_on)
FROM (
    SELECT g.guest_id, CAST(NULL AS DATE) AS changed_on FROM loyalty_guests g WHERE :full_run
    UNION ALL
    SELECT r.guest_id, COALESCE(new_checks.first_on, DATE '1900-01-01')
    FROM loyalty_work_guest_rows r
    LEFT JOIN (SELECT i.guest_id, MIN(c.business_date) AS first_on
               FROM loyalty_work_identities i
               JOIN loyalty_work_checks c
                 ON c.location_id = i.location_id AND c.check_id = i.check_id
               GROUP BY i.guest_id) new_checks ON new_checks.guest_id = r.guest_id
    UNION ALL
    SELECT guest_id, changed_on FROM loyalty_work_refunded_checks
    UNION ALL
    SELECT m.guest_id, CAST((p.recorded_at AT TIME ZONE s.timezone) AS DATE)
    FROM passkit_redemptions p
    CROSS JOIN loyalty_program_settings s
    JOIN loyalty_members m ON m.external_id = p.member_external_id
    WHERE CAST((p.recorded_at AT TIME ZONE s.timezone) AS DATE) <= CAST(:as_of AS DATE)
      AND NOT EXISTS (SELECT 1 FROM loyalty_ledger l
                      WHERE l.entry_key = 'redemption|' || p.passkit_event_id)
    UNION ALL
    -- the guest of a member joined into another one and not yet frozen (060), replayed whole
    SELECT guest_id, DATE '1900-01-01' FROM loyalty_work_unfrozen_members
    UNION ALL
    SELECT c.guest_id, CAST(NULL AS DATE)
    FROM loyalty_checks c
    WHERE c.qualifying
      AND c.business_date > CAST(:leaving_after AS DATE)
      AND c.business_date <= CAST(:leaving_until AS DATE)
    UNION ALL
    SELECT g.guest_id, CAST(NULL AS DATE)
    FROM loyalty_guests g
    CROSS JOIN loyalty_program_settings s
    WHERE (g.last_visit_on + s.reengage_after_days > CAST(:previous_as_of AS DATE)
           AND g.last_visit_on + s.reengage_after_days <= CAST(:as_of AS DATE))
       OR (g.last_visit_on + s.expire_points_after_days > CAST(:previous_as_of AS DATE)
           AND g.last_visit_on + s.expire_points_after_days <= CAST(:as_of AS DATE))
       OR (g.last_visit_on + s.revoke_pass_after_days > CAST(:previous_as_of AS DATE)
           AND g.last_visit_on + s.revoke_pass_after_days <= CAST(:as_of AS DATE))
) affected
WHERE affected.guest_id IS NOT NULL
GROUP BY affected.guest_id;
