-- Ledger entries from facts, keyed by natural key so reruns add nothing:
--   earn        per qualifying check of a guest, floor(eligible spend x points per unit)
--   reversal    per refunded payment: for each check, cumulatively over its refunds in date
--               order, min(floor(refunded so far x points per unit), points the check earned)
--   bonus       per member enrolled, on its enrolment day
--   redemption  per PassKit POINTS_BURNED event, on the local date PassKit recorded it
-- earn, bonus and redemption entries are insert-only. Reversals are derived (see below), as
-- are expiry entries (085_expiry_entries.sql).
-- An entry already written is skipped by NOT EXISTS on its key and date rather than by
-- ON CONFLICT: DuckDB plans ON CONFLICT as a join with the whole ledger, while the date
-- bounds the rows to compare with (DuckDB skips the row groups of other dates). The date of
-- an entry is fixed by its fact (a check's business date, an enrolment made after the
-- previous run's day, a redemption's recorded time in the program's timezone), except in a
-- full run (a program change may move an enrolment or a local date): then by key alone.
INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, location_id, check_id,
                            run_id, created_at)
SELECT 'earn|' || c.location_id || '|' || c.check_id, 'earn', c.business_date,
       FLOOR(c.eligible_spend * s.points_per_currency_unit), c.location_id, c.check_id,
       :run_id, CURRENT_TIMESTAMP
FROM loyalty_work_checks w
JOIN loyalty_checks c ON c.location_id = w.location_id AND c.check_id = w.check_id
CROSS JOIN loyalty_program_settings s
WHERE c.qualifying
  AND c.guest_id IS NOT NULL
  AND FLOOR(c.eligible_spend * s.points_per_currency_unit) > 0
  AND c.business_date BETWEEN CAST(:work_from AS DATE) AND CAST(:work_to AS DATE)
  AND NOT EXISTS (SELECT 1 FROM loyalty_ledger l
                  WHERE l.entry_key = 'earn|' || c.location_id || '|' || c.check_id
                    AND l.entry_date BETWEEN CAST(:work_from AS DATE) AND CAST(:work_to AS DATE))
-- date-ordered row groups: reads after a date skip older ones
ORDER BY c.business_date;

-- The earn entries of the checks replayed from their first check (080) and of the refunded
-- checks of the owners (below), read from the ledger once.
INSERT INTO loyalty_work_earn_entries (location_id, check_id, entry_date, points)
SELECT c.location_id, c.check_id, l.entry_date, l.points
FROM (SELECT DISTINCT oc.location_id, oc.check_id
      FROM loyalty_work_owner_checks oc
      JOIN loyalty_work_owners o ON o.owner_id = oc.owner_id
      WHERE o.checkpoint_on IS NULL
         OR EXISTS (SELECT 1 FROM loyalty_refunds f
                    WHERE f.location_id = oc.location_id AND f.check_id = oc.check_id)) c
JOIN loyalty_ledger l ON l.entry_key = 'earn|' || c.location_id || '|' || c.check_id;

-- Reversals are derived: for every check of a recomputed guest (every check in a full run)
-- they are recomputed from the check's refunds as of the run's day (the latest export of each
-- Payment Id), so a refund amount that changes or a refund dated before one already reversed
-- corrects them. An entry the refunds no longer give, or give differently, is removed and
-- written again; an unchanged one keeps its run_id and created_at.
INSERT INTO loyalty_work_derived_entries (entry_key, kind, entry_date, points, location_id,
                                          check_id, payment_id, external_id)
WITH refunds_so_far AS (
    SELECT f.location_id, f.check_id, f.payment_id, f.refund_date, earned.points AS earned,
           SUM(f.refund_amount) OVER (
               PARTITION BY f.location_id, f.check_id
               ORDER BY f.refund_date, f.payment_id ROWS UNBOUNDED PRECEDING
           ) AS refunded
    FROM loyalty_work_owners o
    JOIN loyalty_work_owner_checks c ON c.owner_id = o.owner_id AND o.owner_kind = 'guest'
    JOIN loyalty_refunds f ON f.location_id = c.location_id AND f.check_id = c.check_id
    JOIN loyalty_work_earn_entries earned
      ON earned.location_id = f.location_id AND earned.check_id = f.check_id
    WHERE f.refund_date <= CAST(:as_of AS DATE)
),
reversed_so_far AS (
    SELECT r.*, LEAST(FLOOR(r.refunded * s.points_per_currency_unit), r.earned) AS reversed
    FROM refunds_so_far r
    CROSS JOIN loyalty_program_settings s
),
reversals AS (
    SELECT r.*,
           r.reversed - COALESCE(LAG(r.reversed) OVER (
               PARTITION BY r.location_id, r.check_id ORDER BY r.refund_date, r.payment_id
           ), 0) AS points
    FROM reversed_so_far r
)
SELECT 'reversal|' || location_id || '|' || payment_id, 'reversal', refund_date, -points,
       location_id, check_id, payment_id, CAST(NULL AS VARCHAR)
FROM reversals
WHERE points > 0;

-- Stale reversal entries: in a full run any, otherwise those of the recomputed guests' checks
-- (two statements, so the second reads the ledger by check rather than scanning it).
DELETE FROM loyalty_ledger
WHERE :full_run AND kind = 'reversal'
  AND NOT EXISTS (SELECT 1 FROM loyalty_work_derived_entries d
                  WHERE d.entry_key = loyalty_ledger.entry_key
                    AND d.entry_date = loyalty_ledger.entry_date
                    AND d.points = loyalty_ledger.points
                    AND d.check_id = loyalty_ledger.check_id);

DELETE FROM loyalty_ledger
WHERE kind = 'reversal'
  AND EXISTS (SELECT 1 FROM loyalty_work_owner_checks c
              JOIN loyalty_work_owners o ON o.owner_id = c.owner_id AND o.owner_kind = 'guest'
              WHERE c.location_id = loyalty_ledger.location_id
                AND c.check_id = loyalty_ledger.check_id)
  AND NOT EXISTS (SELECT 1 FROM loyalty_work_derived_entries d
                  WHERE d.entry_key = loyalty_ledger.entry_key
                    AND d.entry_date = loyalty_ledger.entry_date
                    AND d.points = loyalty_ledger.points
                    AND d.check_id = loyalty_ledger.check_id);

INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, location_id, check_id,
                            payment_id, run_id, created_at)
SELECT entry_key, kind, entry_date, points, location_id, check_id, payment_id, :run_id,
       CURRENT_TIMESTAMP
FROM loyalty_work_derived_entries
WHERE kind = 'reversal'
ON CONFLICT (entry_key) DO NOTHING;

INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, external_id, run_id,
                            created_at)
SELECT 'bonus|' || m.external_id, 'bonus', m.enrolled_on, s.welcome_bonus_points,
       m.external_id, :run_id, CURRENT_TIMESTAMP
FROM loyalty_members m
CROSS JOIN loyalty_program_settings s
WHERE s.welcome_bonus_points > 0
  AND (:full_run OR m.enrolled_on > CAST(:previous_as_of AS DATE))
  AND m.enrolled_on <= CAST(:as_of AS DATE)
  AND NOT EXISTS (SELECT 1 FROM loyalty_ledger l
                  WHERE l.entry_key = 'bonus|' || m.external_id
                    AND (:full_run OR l.entry_date > CAST(:previous_as_of AS DATE)));

INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, external_id,
                            passkit_event_id, run_id, created_at)
SELECT 'redemption|' || p.passkit_event_id, 'redemption',
       CAST((p.recorded_at AT TIME ZONE s.timezone) AS DATE), -p.points,
       p.member_external_id, p.passkit_event_id, :run_id, CURRENT_TIMESTAMP
FROM passkit_redemptions p
CROSS JOIN loyalty_program_settings s
WHERE p.points > 0
  AND CAST((p.recorded_at AT TIME ZONE s.timezone) AS DATE) <= CAST(:as_of AS DATE)
  AND NOT EXISTS (SELECT 1 FROM loyalty_ledger l
                  WHERE l.entry_key = 'redemption|' || p.passkit_event_id
                    AND (:full_run
                         OR l.entry_date = CAST((p.recorded_at AT TIME ZONE s.timezone)
                                                AS DATE)));
