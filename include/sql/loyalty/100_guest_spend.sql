-- Per-guest spend aggregates as of the run's day, for the recomputed guests: checks, visits
-- (qualifying checks), first and last visit, lifetime eligible spend, refunded and net of
-- refunds, net spend in the tier window, tier and balance on the run's day. An owner
-- replayed from its checkpoint adds its checks after it, and the change of older ones, to
-- the checkpoint's figures.
DELETE FROM guest_spend
WHERE EXISTS (SELECT 1 FROM loyalty_work_guests w WHERE w.guest_id = guest_spend.guest_id)
   OR EXISTS (SELECT 1 FROM loyalty_work_guest_remap r
              WHERE r.old_guest_id = guest_spend.guest_id);

-- (Into a work table first: 115 reads the rows back for the checkpoints, and PostgreSQL,
-- nested loops off there, would scan the whole of guest_spend for them.)
-- postgresql: SET enable_nestloop = off
INSERT INTO loyalty_work_guest_spend (guest_id, external_id, checks, visits, first_visit_on,
                                      last_visit_on, lifetime_spend, lifetime_refunded,
                                      lifetime_net_spend, window_net_spend, tier_id, points,
                                      as_of)
WITH guest_checks AS (
    SELECT o.owner_id, o.checkpoint_on, c.location_id, c.check_id, c.business_date,
           c.qualifying, c.replayed,
           CASE WHEN c.qualifying THEN c.eligible_spend ELSE 0 END AS spend
    FROM loyalty_work_owners o
    JOIN loyalty_work_owner_checks c ON c.owner_id = o.owner_id
    WHERE o.owner_kind = 'guest'
),
check_refunds AS (
    SELECT g.location_id, g.check_id, SUM(f.refund_amount) AS refunded,
           SUM(CASE WHEN f.refund_date <= g.checkpoint_on THEN f.refund_amount END)
               AS refunded_before
    FROM guest_checks g
    JOIN loyalty_refunds f ON f.location_id = g.location_id AND f.check_id = g.check_id
    WHERE f.refund_date <= CAST(:as_of AS DATE)
    GROUP BY g.location_id, g.check_id
),
net_checks AS (
    SELECT g.*, LEAST(COALESCE(r.refunded, 0), g.spend) AS refunded,
           GREATEST(0, g.spend - COALESCE(r.refunded, 0)) AS net_spend,
           LEAST(COALESCE(r.refunded_before, 0), g.spend) AS refunded_before,
           GREATEST(0, g.spend - COALESCE(r.refunded_before, 0)) AS net_spend_before
    FROM guest_checks g
    LEFT JOIN check_refunds r ON r.location_id = g.location_id AND r.check_id = g.check_id
),
-- Replayed checks count whole; an older check of an owner replayed from its checkpoint
-- counts its change since the checkpoint (refunded since, leaving the window).
changes AS (
    SELECT n.owner_id,
           SUM(CASE WHEN n.replayed THEN 1 ELSE 0 END) AS checks,
           SUM(CASE WHEN n.replayed AND n.qualifying THEN 1 ELSE 0 END) AS visits,
           MIN(CASE WHEN n.replayed AND n.qualifying THEN n.business_date END)
               AS first_visit_on,
           MAX(CASE WHEN n.replayed AND n.qualifying THEN n.business_date END)
               AS last_visit_on,
           SUM(CASE WHEN n.replayed THEN n.spend ELSE 0 END) AS lifetime_spend,
           SUM(CASE WHEN n.replayed THEN n.refunded
                    ELSE n.refunded - n.refunded_before END) AS lifetime_refunded,
           SUM(CASE WHEN n.replayed THEN n.net_spend
                    ELSE n.net_spend - n.net_spend_before END) AS lifetime_net_spend,
           SUM(CASE WHEN n.business_date > CAST(:as_of AS DATE) - s.window_days
                    THEN n.net_spend ELSE 0 END
               - CASE WHEN NOT n.replayed
                           AND n.business_date > n.checkpoint_on - s.window_days
                      THEN n.net_spend_before ELSE 0 END) AS window_net_spend
    FROM net_checks n
    CROSS JOIN loyalty_program_settings s
    GROUP BY n.owner_id
),
aggregates AS (
    SELECT o.owner_id, o.guest_id, o.external_id,
           COALESCE(k.checks, 0) + COALESCE(ch.checks, 0) AS checks,
           COALESCE(k.qualifying_checks, 0) + COALESCE(ch.visits, 0) AS visits,
           COALESCE(k.first_visit_on, ch.first_visit_on) AS first_visit_on,
           COALESCE(ch.last_visit_on, k.last_visit_on) AS last_visit_on,
           COALESCE(k.lifetime_spend, 0) + COALESCE(ch.lifetime_spend, 0) AS lifetime_spend,
           COALESCE(k.lifetime_refunded, 0) + COALESCE(ch.lifetime_refunded, 0)
               AS lifetime_refunded,
           COALESCE(k.lifetime_net_spend, 0) + COALESCE(ch.lifetime_net_spend, 0)
               AS lifetime_net_spend,
           COALESCE(k.window_spend, 0) + COALESCE(ch.window_net_spend, 0) AS window_net_spend
    FROM loyalty_work_owners o
    LEFT JOIN loyalty_work_checkpoints k
      ON k.guest_id = o.guest_id AND o.checkpoint_on IS NOT NULL
    LEFT JOIN changes ch ON ch.owner_id = o.owner_id
    WHERE o.owner_kind = 'guest'
),
tiers_reached AS (
    SELECT a.owner_id, t.tier_id,
           ROW_NUMBER() OVER (PARTITION BY a.owner_id ORDER BY t.tier_rank DESC) AS tier_order
    FROM aggregates a
    JOIN loyalty_program_tiers t ON t.min_spend <= a.window_net_spend
),
balances AS (
    SELECT owner_id, balance_after
    FROM (
        SELECT b.owner_id, b.balance_after,
               ROW_NUMBER() OVER (PARTITION BY b.owner_id
                                  ORDER BY b.entry_date DESC, b.step DESC, b.entry_key DESC)
                   AS latest
        FROM loyalty_work_balances b
    ) ranked
    WHERE latest = 1
)
SELECT a.guest_id, a.external_id, a.checks, a.visits, a.first_visit_on, a.last_visit_on,
       a.lifetime_spend, a.lifetime_refunded, a.lifetime_net_spend, a.window_net_spend,
       t.tier_id, COALESCE(b.balance_after, 0), CAST(:as_of AS DATE)
FROM aggregates a
JOIN tiers_reached t ON t.owner_id = a.owner_id AND t.tier_order = 1
LEFT JOIN balances b ON b.owner_id = a.owner_id;

INSERT INTO guest_spend (guest_id, external_id, checks, visits, first_visit_on, last_visit_on,
                         lifetime_spend, lifetime_refunded, lifetime_net_spend,
                         window_net_spend, tier_id, points, as_of)
SELECT guest_id, external_id, checks, visits, first_visit_on, last_visit_on, lifetime_spend,
       lifetime_refunded, lifetime_net_spend, window_net_spend, tier_id, points, as_of
FROM loyalty_work_guest_spend;
