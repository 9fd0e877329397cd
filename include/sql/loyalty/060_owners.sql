-- Owners whose balance, tier and status this run computes, with their checks and members:
--   'guest'  each recomputed guest as of the run's day, its checks, all its members'
--            redemptions and the welcome bonus of its carrying (first-enrolled) member,
--            replayed from its checkpoint (checkpoint_on) when no new fact of this run is
--            dated on or before the previous run's day and no merge joined it; a guest whose
--            first check is after that day is replayed whole from there (no checkpoint)
--   'merged' each member joined into an earlier-enrolled member's guest and not yet frozen
--            (or whose history before the merge this run changes), as of the day before the
--            merge, over the checks it (or members merged into it) covered: its pass keeps
--            that state
-- The checkpoints of the recomputed guests, read once for the models that use them (those
-- a guest is not replayed from are dropped below).
INSERT INTO loyalty_work_checkpoints
SELECT k.*
FROM loyalty_guest_checkpoints k
JOIN loyalty_work_guests w ON w.guest_id = k.guest_id;

INSERT INTO loyalty_work_owners (owner_id, owner_kind, guest_id, external_id, enrolled_on,
                                 eval_on, checkpoint_on)
SELECT 'guest|' || g.guest_id, 'guest', g.guest_id, g.carrier_external_id,
       g.carrier_enrolled_on, CAST(:as_of AS DATE),
       CASE WHEN NOT :full_run
                 AND (w.changed_on IS NULL OR w.changed_on > CAST(:previous_as_of AS DATE))
                 AND NOT EXISTS (SELECT 1 FROM loyalty_work_guest_remap remap
                                 WHERE remap.new_guest_id = g.guest_id)
                 -- written with its run's row in loyalty_runs: never after the previous run
                 AND (k.checkpoint_on IS NULL
                      OR k.checkpoint_on <= CAST(:previous_as_of AS DATE))
            THEN COALESCE(k.checkpoint_on,
                          CASE WHEN g.first_business_date > CAST(:previous_as_of AS DATE)
                               THEN CAST(:previous_as_of AS DATE) END)
       END
FROM loyalty_guests g
JOIN loyalty_work_guests w ON w.guest_id = g.guest_id
LEFT JOIN loyalty_work_checkpoints k ON k.guest_id = g.guest_id;

-- Older checks that a guest replayed from its checkpoint still needs: those leaving the tier
-- window in this run and those refunded since the previous run's day (nothing of the guest
-- happened between its checkpoint and the previous run's day, or a run then would have
-- recomputed it: a new checkpoint).
INSERT INTO loyalty_work_owner_checks (owner_id, location_id, check_id, business_date,
                                       qualifying, eligible_spend, replayed)
SELECT o.owner_id, c.location_id, c.check_id, c.business_date, c.qualifying,
       c.eligible_spend, FALSE
FROM loyalty_work_owners o
JOIN loyalty_checks c ON c.guest_id = o.guest_id
WHERE o.checkpoint_on IS NOT NULL AND c.qualifying
  AND c.business_date > CAST(:leaving_after AS DATE)
  AND c.business_date <= CAST(:leaving_until AS DATE)
  AND c.business_date <= o.checkpoint_on
UNION
SELECT o.owner_id, r.location_id, r.check_id, r.business_date, r.qualifying,
       r.eligible_spend, FALSE
FROM loyalty_work_refunded_checks r
JOIN loyalty_work_owners o ON o.guest_id = r.guest_id
WHERE o.checkpoint_on IS NOT NULL AND r.dated_in_run AND r.business_date <= o.checkpoint_on;

-- A checkpoint holds counts, not which checks are fully refunded: a guest that could have
-- every qualifying check fully refunded by this run's refunds is replayed from its first
-- check (it keeps an untouched, not fully refunded one otherwise: no 'refunded' revocation).
-- (Joins rather than correlated subqueries: PostgreSQL runs those once per owner, each a scan
-- of the work table.)
UPDATE loyalty_work_owners
SET checkpoint_on = NULL
WHERE owner_id IN (
    SELECT o.owner_id
    FROM loyalty_work_owners o
    JOIN loyalty_work_checkpoints k ON k.guest_id = o.guest_id
    LEFT JOIN (SELECT owner_id, COUNT(*) AS older_checks
               FROM loyalty_work_owner_checks
               WHERE NOT replayed
               GROUP BY owner_id) c ON c.owner_id = o.owner_id
    WHERE o.checkpoint_on IS NOT NULL
      AND k.qualifying_checks - k.refunded_checks <= COALESCE(c.older_checks, 0));

DELETE FROM loyalty_work_checkpoints
WHERE NOT EXISTS (SELECT 1 FROM loyalty_work_owners o
                  WHERE o.guest_id = loyalty_work_checkpoints.guest_id
                    AND o.checkpoint_on IS NOT NULL);

DELETE FROM loyalty_work_owner_checks
WHERE NOT replayed
  AND EXISTS (SELECT 1 FROM loyalty_work_owners o
              WHERE o.owner_id = loyalty_work_owner_checks.owner_id
                AND o.checkpoint_on IS NULL);

INSERT INTO loyalty_work_owners (owner_id, owner_kind, guest_id, external_id, enrolled_on,
                                 eval_on)
SELECT 'member|' || m.external_id, 'merged', m.guest_id, m.external_id, m.enrolled_on,
       m.merged_on - 1
FROM (SELECT external_id, guest_id, enrolled_on, merged_on FROM loyalty_work_unfrozen_members
      UNION
      -- a frozen one too when a fact of this run is dated before its merge (a refund
      -- exported again with another date): its guest is replayed whole then (050)
      SELECT before.external_id, before.guest_id, before.enrolled_on, before.merged_on
      FROM loyalty_members before
      JOIN loyalty_work_guests w ON w.guest_id = before.guest_id
      WHERE before.merged_into IS NOT NULL
        AND w.changed_on < before.merged_on) m;

-- The replayed history: every check of a guest without a checkpoint, the checks after the
-- checkpoint of the others (all of them folded in by this run, so dated after the previous
-- run's day: only recent row groups are read). Of a guest joined by a merge, the checks
-- before this run are those 030 read already (loyalty_work_history; the run's checks are read
-- with the checkpointed guests' below); the checks of other guests without one are read here.
INSERT INTO loyalty_work_owner_checks (owner_id, location_id, check_id, business_date,
                                       qualifying, eligible_spend, customer_name, email, phone,
                                       replayed, covered_by)
SELECT o.owner_id, h.location_id, h.check_id, h.business_date, h.qualifying,
       h.eligible_spend, h.customer_name, h.email, h.phone, TRUE, h.covered_by
FROM loyalty_work_owners o
JOIN loyalty_work_history h ON h.guest_id = o.guest_id
WHERE o.owner_kind = 'guest' AND o.checkpoint_on IS NULL
UNION ALL
SELECT o.owner_id, c.location_id, c.check_id, c.business_date, c.qualifying,
       c.eligible_spend, c.customer_name, c.email, c.phone, TRUE, c.covered_by
FROM (SELECT o.owner_id, o.guest_id, g.first_business_date
      FROM loyalty_work_owners o
      JOIN loyalty_guests g ON g.guest_id = o.guest_id
      WHERE o.owner_kind = 'guest' AND o.checkpoint_on IS NULL
        AND NOT EXISTS (SELECT 1 FROM loyalty_work_history h WHERE h.guest_id = o.guest_id)
      -- a barrier: decided before the join, so DuckDB reads these guests' checks only
      LIMIT 1000000000) o
-- (no check of a guest is older than its first: DuckDB skips the row groups before the
-- earliest of these guests' first checks, often recent ones)
JOIN loyalty_checks c
  ON c.guest_id = o.guest_id AND c.business_date >= o.first_business_date;

-- The checks of this run (dated after the previous run's day: one read of the recent row
-- groups) of the guests replayed from their checkpoint and of those whose older checks are
-- in loyalty_work_history.
-- (PostgreSQL takes this run's checks for none, its statistics ending before them: no nested
-- loop.)
-- postgresql: SET enable_nestloop = off
INSERT INTO loyalty_work_owner_checks (owner_id, location_id, check_id, business_date,
                                       qualifying, eligible_spend, customer_name, email, phone,
                                       replayed, covered_by)
SELECT o.owner_id, c.location_id, c.check_id, c.business_date, c.qualifying,
       c.eligible_spend, c.customer_name, c.email, c.phone, TRUE, c.covered_by
FROM loyalty_work_owners o
JOIN loyalty_checks c ON c.guest_id = o.guest_id
WHERE o.owner_kind = 'guest'
  AND c.business_date > CAST(:previous_as_of AS DATE)
  AND (o.checkpoint_on IS NOT NULL
       OR EXISTS (SELECT 1 FROM loyalty_work_history h WHERE h.guest_id = o.guest_id));

INSERT INTO loyalty_work_owner_members (owner_id, external_id, is_bonus)
SELECT o.owner_id, m.external_id, m.external_id = o.external_id
FROM loyalty_work_owners o
JOIN loyalty_members m ON m.guest_id = o.guest_id
WHERE o.owner_kind = 'guest';

INSERT INTO loyalty_work_owner_members (owner_id, external_id, is_bonus)
WITH RECURSIVE member_group (owner_id, external_id) AS (
    SELECT owner_id, external_id FROM loyalty_work_owners WHERE owner_kind = 'merged'
    UNION ALL
    SELECT g.owner_id, m.external_id
    FROM member_group g
    JOIN loyalty_members m ON m.merged_into = g.external_id
)
SELECT g.owner_id, g.external_id, g.external_id = o.external_id
FROM member_group g
JOIN loyalty_work_owners o ON o.owner_id = g.owner_id;

-- A merged owner's checks are among its guest's, which this run replays whole (050).
INSERT INTO loyalty_work_owner_checks (owner_id, location_id, check_id, business_date,
                                       qualifying, eligible_spend, customer_name, email, phone,
                                       replayed, covered_by)
SELECT om.owner_id, c.location_id, c.check_id, c.business_date, c.qualifying,
       c.eligible_spend, c.customer_name, c.email, c.phone, TRUE, c.covered_by
FROM loyalty_work_owner_members om
JOIN loyalty_work_owners o ON o.owner_id = om.owner_id
JOIN loyalty_work_owner_checks c
  ON c.owner_id = 'guest|' || o.guest_id AND c.replayed AND c.covered_by = om.external_id
WHERE o.owner_kind = 'merged';
