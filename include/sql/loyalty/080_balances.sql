-- The bonus (of the carrying member) and redemption entries of the owners' members, after the
-- owner's checkpoint: read from the ledger by member apart from the replay below, whose
-- nested loops PostgreSQL must not take (its marker); here it looks each member up in the
-- ledger's index on external_id rather than scanning the whole ledger (at a year: 45 against
-- 155 ms, EXPLAIN ANALYZE).
INSERT INTO loyalty_work_member_entries (owner_id, entry_key, entry_date, step, points)
SELECT om.owner_id, l.entry_key, l.entry_date, CASE l.kind WHEN 'bonus' THEN 1 ELSE 3 END,
       l.points
FROM loyalty_work_owner_members om
JOIN loyalty_work_owners o ON o.owner_id = om.owner_id
JOIN loyalty_ledger l ON l.external_id = om.external_id
WHERE ((l.kind = 'bonus' AND om.is_bonus) OR l.kind = 'redemption')
  AND l.entry_date <= o.eval_on
  AND (o.checkpoint_on IS NULL OR l.entry_date > o.checkpoint_on);

-- Each owner's ledger replayed up to its evaluation day: the balance after every entry.
-- Order: by date, then within a day bonus (1), earnings (2), redemptions (3), reversals (4),
-- expiry (5). The balance never goes below 0 at any step: within a run of entries starting
-- from 0, balance = running sum - min(0, lowest running sum so far). An expiry (from the
-- owner's absences, not from stored expiry entries, so a merge that fills a gap undoes it)
-- takes the balance to 0 and starts a new run.
-- An owner replayed from its checkpoint starts with one 'opening' step (step 0) on the
-- checkpoint's day carrying the checkpoint's balance, then the entries after that day.
-- postgresql: SET enable_nestloop = off
INSERT INTO loyalty_work_balances (owner_id, entry_key, entry_date, step, points,
                                   balance_before, balance_after, is_expiry)
WITH entries AS (
    SELECT o.owner_id, CAST('opening' AS VARCHAR) AS entry_key, o.checkpoint_on AS entry_date,
           0 AS step, k.balance AS points,
           FALSE AS is_expiry
    FROM loyalty_work_owners o
    JOIN loyalty_work_checkpoints k ON k.guest_id = o.guest_id
    WHERE o.checkpoint_on IS NOT NULL
    UNION ALL
    -- From the first check: the checks' earn entries, read by 065, and their reversal entries,
    -- the ones 065 just derived and wrote (a whole-history read of the ledger otherwise).
    SELECT oc.owner_id, 'earn|' || e.location_id || '|' || e.check_id, e.entry_date, 2,
           e.points, FALSE
    FROM loyalty_work_owner_checks oc
    JOIN loyalty_work_owners o ON o.owner_id = oc.owner_id
    JOIN loyalty_work_earn_entries e
      ON e.location_id = oc.location_id AND e.check_id = oc.check_id
    WHERE e.entry_date <= o.eval_on AND o.checkpoint_on IS NULL
    UNION ALL
    SELECT oc.owner_id, d.entry_key, d.entry_date, 4, d.points, FALSE
    FROM loyalty_work_owner_checks oc
    JOIN loyalty_work_owners o ON o.owner_id = oc.owner_id
    JOIN loyalty_work_derived_entries d
      ON d.location_id = oc.location_id AND d.check_id = oc.check_id
    WHERE d.kind = 'reversal' AND d.entry_date <= o.eval_on AND o.checkpoint_on IS NULL
    UNION ALL
    -- After a checkpoint: nothing of the owner is dated between it and the previous run's
    -- day (060), so the ledger is read after that day only (DuckDB skips older row groups).
    SELECT oc.owner_id, l.entry_key, l.entry_date,
           CASE l.kind WHEN 'earn' THEN 2 ELSE 4 END, l.points, FALSE
    FROM loyalty_work_owner_checks oc
    JOIN loyalty_work_owners o ON o.owner_id = oc.owner_id
    JOIN loyalty_ledger l ON l.location_id = oc.location_id AND l.check_id = oc.check_id
    WHERE l.kind IN ('earn', 'reversal') AND l.entry_date <= o.eval_on
      AND o.checkpoint_on IS NOT NULL
      AND l.entry_date > CAST(:previous_as_of AS DATE)
    UNION ALL
    SELECT owner_id, entry_key, entry_date, step, points, FALSE
    FROM loyalty_work_member_entries
    UNION ALL
    SELECT a.owner_id, 'expiry|' || a.last_location_id || '|' || a.last_check_id,
           a.expires_on, 5, CAST(0 AS DECIMAL(12,2)), TRUE
    FROM loyalty_work_absences a
    WHERE a.expires_on IS NOT NULL
),
runs AS (
    SELECT e.*,
           COALESCE(SUM(CASE WHEN e.is_expiry THEN 1 ELSE 0 END) OVER (
               PARTITION BY e.owner_id ORDER BY e.entry_date, e.step, e.entry_key
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ), 0) AS run_number
    FROM entries e
),
running AS (
    SELECT r.*,
           SUM(r.points) OVER (
               PARTITION BY r.owner_id, r.run_number ORDER BY r.entry_date, r.step, r.entry_key
               ROWS UNBOUNDED PRECEDING
           ) AS running_sum
    FROM runs r
),
clamped AS (
    SELECT r.*,
           r.running_sum - LEAST(0, MIN(r.running_sum) OVER (
               PARTITION BY r.owner_id, r.run_number ORDER BY r.entry_date, r.step, r.entry_key
               ROWS UNBOUNDED PRECEDING
           )) AS balance
    FROM running r
),
stepped AS (
    SELECT c.*,
           COALESCE(LAG(c.balance) OVER (
               PARTITION BY c.owner_id, c.run_number ORDER BY c.entry_date, c.step, c.entry_key
           ), 0) AS previous_balance
    FROM clamped c
)
SELECT owner_id, entry_key, entry_date, step, points,
       CASE WHEN is_expiry THEN balance ELSE previous_balance END,
       CASE WHEN is_expiry THEN 0 ELSE balance END,
       is_expiry
FROM stepped;
