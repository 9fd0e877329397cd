-- Each owner's status, and its tier and balance on the day its pass state is taken:
--   revoked 'inactive'  no qualifying visit for revoke_pass_after_days (from that day on)
--   revoked 'refunded'  every qualifying check fully refunded (refunds >= eligible spend),
--                       when the program says so (from the day the last became so)
--   revoked 'merged'    a member joined into an earlier-enrolled member's guest
-- A new qualifying visit ends an 'inactive' or 'refunded' revocation (reinstatement).
-- A revoked pass keeps the tier and balance of its revocation day (state_on), an active one
-- shows those of the evaluation day. Tier: the highest level whose min_spend <= the eligible
-- spend net of refunds (never below 0 per check) over business dates in
-- (state_on - window_days, state_on], counting refunds dated up to state_on.
-- An owner replayed from its checkpoint starts from the checkpoint's window spend, adds the
-- checks after it and the change of older checks (leaving the window, refunded since): it
-- keeps a qualifying check not fully refunded (060), so no 'refunded' revocation.
-- qualifying_checks, refunded_checks: as of eval_on, for the next checkpoint.
INSERT INTO loyalty_work_owner_states (owner_id, last_visit_on, revoked_reason, revoked_on,
                                       state_on, window_spend, tier_id, balance,
                                       qualifying_checks, refunded_checks)
WITH qualifying_checks AS (
    SELECT c.owner_id, c.location_id, c.check_id, c.business_date, c.eligible_spend
    FROM loyalty_work_owner_checks c
    JOIN loyalty_work_owners o ON o.owner_id = c.owner_id
    WHERE c.qualifying AND c.replayed AND c.business_date <= o.eval_on
),
refund_steps AS (
    SELECT q.owner_id, q.location_id, q.check_id, q.eligible_spend, f.refund_date,
           SUM(f.refund_amount) OVER (
               PARTITION BY q.owner_id, q.location_id, q.check_id
               ORDER BY f.refund_date, f.payment_id ROWS UNBOUNDED PRECEDING
           ) AS refunded
    FROM qualifying_checks q
    JOIN loyalty_work_owners o ON o.owner_id = q.owner_id
    JOIN loyalty_refunds f ON f.location_id = q.location_id AND f.check_id = q.check_id
    WHERE f.refund_date <= o.eval_on
),
fully_refunded AS (
    SELECT owner_id, location_id, check_id, MIN(refund_date) AS refunded_on
    FROM refund_steps
    WHERE refunded >= eligible_spend
    GROUP BY owner_id, location_id, check_id
),
refund_revocations AS (
    SELECT q.owner_id, COUNT(*) AS checks, COUNT(fr.refunded_on) AS refunded,
           CASE WHEN COUNT(*) = COUNT(fr.refunded_on)
                THEN MAX(GREATEST(fr.refunded_on, q.business_date)) END AS revoked_on
    FROM qualifying_checks q
    LEFT JOIN fully_refunded fr
      ON fr.owner_id = q.owner_id AND fr.location_id = q.location_id
     AND fr.check_id = q.check_id
    GROUP BY q.owner_id
),
last_visits AS (
    SELECT owner_id, MAX(visit_on) AS last_visit_on,
           MAX(CASE WHEN next_visit_on IS NULL THEN revokes_on END) AS inactive_on
    FROM loyalty_work_absences
    GROUP BY owner_id
),
revocations AS (
    SELECT o.owner_id, o.owner_kind, o.eval_on, o.enrolled_on, lv.last_visit_on,
           lv.inactive_on,
           CASE WHEN s.revoke_when_all_refunded AND k.guest_id IS NULL
                THEN rr.revoked_on END AS refunded_on
    FROM loyalty_work_owners o
    CROSS JOIN loyalty_program_settings s
    LEFT JOIN loyalty_work_checkpoints k
      ON k.guest_id = o.guest_id AND o.checkpoint_on IS NOT NULL
    LEFT JOIN last_visits lv ON lv.owner_id = o.owner_id
    LEFT JOIN refund_revocations rr ON rr.owner_id = o.owner_id
),
statuses AS (
    SELECT r.owner_id, r.owner_kind, r.eval_on, r.last_visit_on,
           CASE WHEN r.enrolled_on IS NULL OR LEAST(r.inactive_on, r.refunded_on) IS NULL
                THEN NULL
                ELSE GREATEST(LEAST(r.inactive_on, r.refunded_on), r.enrolled_on)
           END AS revoked_since,
           CASE WHEN r.enrolled_on IS NULL THEN NULL
                WHEN r.inactive_on IS NOT NULL
                     AND (r.refunded_on IS NULL OR r.inactive_on <= r.refunded_on)
                THEN 'inactive'
                WHEN r.refunded_on IS NOT NULL THEN 'refunded'
           END AS revoked_reason
    FROM revocations r
),
states AS (
    SELECT st.owner_id, st.last_visit_on,
           CASE WHEN st.owner_kind = 'merged' THEN 'merged' ELSE st.revoked_reason END
               AS revoked_reason,
           CASE WHEN st.owner_kind = 'merged' THEN st.eval_on + 1 ELSE st.revoked_since END
               AS revoked_on,
           COALESCE(st.revoked_since, st.eval_on) AS state_on
    FROM statuses st
),
window_checks AS (
    SELECT c.owner_id, c.location_id, c.check_id, c.eligible_spend, st.state_on,
           o.checkpoint_on,
           c.business_date > st.state_on - s.window_days
               AND c.business_date <= st.state_on AS in_window,
           NOT c.replayed
               AND c.business_date > o.checkpoint_on - s.window_days AS in_checkpoint_window
    FROM states st
    JOIN loyalty_work_owners o ON o.owner_id = st.owner_id
    CROSS JOIN loyalty_program_settings s
    JOIN loyalty_work_owner_checks c ON c.owner_id = st.owner_id
    WHERE c.qualifying AND c.business_date <= o.eval_on
),
window_changes AS (
    SELECT w.owner_id,
           CASE WHEN w.in_window
                THEN GREATEST(0, w.eligible_spend - COALESCE(SUM(
                         CASE WHEN f.refund_date <= w.state_on THEN f.refund_amount END), 0))
                ELSE 0 END
           - CASE WHEN w.in_checkpoint_window
                  THEN GREATEST(0, w.eligible_spend - COALESCE(SUM(
                           CASE WHEN f.refund_date <= w.checkpoint_on
                                THEN f.refund_amount END), 0))
                  ELSE 0 END AS spend_change
    FROM window_checks w
    LEFT JOIN loyalty_refunds f ON f.location_id = w.location_id AND f.check_id = w.check_id
    WHERE w.in_window OR w.in_checkpoint_window
    GROUP BY w.owner_id, w.location_id, w.check_id, w.eligible_spend, w.state_on,
             w.checkpoint_on, w.in_window, w.in_checkpoint_window
),
window_spend AS (
    SELECT st.owner_id, COALESCE(k.window_spend, 0) + COALESCE(SUM(wc.spend_change), 0)
               AS window_spend
    FROM states st
    JOIN loyalty_work_owners o ON o.owner_id = st.owner_id
    LEFT JOIN loyalty_work_checkpoints k
      ON k.guest_id = o.guest_id AND o.checkpoint_on IS NOT NULL
    LEFT JOIN window_changes wc ON wc.owner_id = st.owner_id
    GROUP BY st.owner_id, k.window_spend
),
checkpoint_refunds AS (
    SELECT refunded.owner_id, COUNT(*) AS newly_refunded
    FROM (SELECT c.owner_id, c.eligible_spend,
                 SUM(CASE WHEN f.refund_date <= o.eval_on THEN f.refund_amount ELSE 0 END)
                     AS refunded_now,
                 SUM(CASE WHEN f.refund_date <= o.checkpoint_on THEN f.refund_amount ELSE 0 END)
                     AS refunded_before
          FROM loyalty_work_owner_checks c
          JOIN loyalty_work_owners o ON o.owner_id = c.owner_id
          JOIN loyalty_refunds f ON f.location_id = c.location_id AND f.check_id = c.check_id
          WHERE NOT c.replayed AND c.qualifying
          GROUP BY c.owner_id, c.location_id, c.check_id, c.eligible_spend) refunded
    WHERE refunded.refunded_now >= refunded.eligible_spend
      AND refunded.refunded_before < refunded.eligible_spend
    GROUP BY refunded.owner_id
),
tiers_reached AS (
    SELECT ws.owner_id, t.tier_id,
           ROW_NUMBER() OVER (PARTITION BY ws.owner_id ORDER BY t.tier_rank DESC) AS tier_order
    FROM window_spend ws
    JOIN loyalty_program_tiers t ON t.min_spend <= ws.window_spend
),
balances AS (
    SELECT owner_id, balance_after
    FROM (
        SELECT b.owner_id, b.balance_after,
               ROW_NUMBER() OVER (PARTITION BY b.owner_id
                                  ORDER BY b.entry_date DESC, b.step DESC, b.entry_key DESC)
                   AS latest
        FROM loyalty_work_balances b
        JOIN states st ON st.owner_id = b.owner_id
        WHERE b.entry_date <= st.state_on
    ) ranked
    WHERE latest = 1
)
SELECT st.owner_id, st.last_visit_on, st.revoked_reason, st.revoked_on, st.state_on,
       ws.window_spend, t.tier_id, COALESCE(b.balance_after, 0),
       COALESCE(k.qualifying_checks, 0) + COALESCE(rr.checks, 0),
       COALESCE(k.refunded_checks, 0) + COALESCE(rr.refunded, 0)
           + COALESCE(cr.newly_refunded, 0)
FROM states st
JOIN loyalty_work_owners o ON o.owner_id = st.owner_id
JOIN window_spend ws ON ws.owner_id = st.owner_id
JOIN tiers_reached t ON t.owner_id = st.owner_id AND t.tier_order = 1
LEFT JOIN balances b ON b.owner_id = st.owner_id
LEFT JOIN refund_revocations rr ON rr.owner_id = st.owner_id
LEFT JOIN checkpoint_refunds cr ON cr.owner_id = st.owner_id
LEFT JOIN loyalty_work_checkpoints k
  ON k.guest_id = o.guest_id AND o.checkpoint_on IS NOT NULL;
