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
INSERT INTO loyalty_work_owner_states (owner_id, last_visit_on, revoked_reason, revoked_on,
                                       state_on, window_spend, tier_id, balance)
WITH qualifying_checks AS (
    SELECT c.owner_id, c.location_id, c.check_id, c.business_date, c.eligible_spend
    FROM loyalty_work_owner_checks c
    JOIN loyalty_work_owners o ON o.owner_id = c.owner_id
    WHERE c.qualifying AND c.business_date <= o.eval_on
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
    SELECT q.owner_id,
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
           CASE WHEN s.revoke_when_all_refunded THEN rr.revoked_on END AS refunded_on
    FROM loyalty_work_owners o
    CROSS JOIN loyalty_program_settings s
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
window_refunds AS (
    SELECT q.owner_id, q.location_id, q.check_id, SUM(f.refund_amount) AS refunded
    FROM states st
    CROSS JOIN loyalty_program_settings s
    JOIN qualifying_checks q ON q.owner_id = st.owner_id
    JOIN loyalty_refunds f ON f.location_id = q.location_id AND f.check_id = q.check_id
    WHERE q.business_date > st.state_on - s.window_days AND q.business_date <= st.state_on
      AND f.refund_date <= st.state_on
    GROUP BY q.owner_id, q.location_id, q.check_id
),
window_spend AS (
    SELECT st.owner_id,
           COALESCE(SUM(GREATEST(0, q.eligible_spend - COALESCE(wr.refunded, 0))), 0)
               AS window_spend
    FROM states st
    CROSS JOIN loyalty_program_settings s
    LEFT JOIN qualifying_checks q
      ON q.owner_id = st.owner_id
     AND q.business_date > st.state_on - s.window_days AND q.business_date <= st.state_on
    LEFT JOIN window_refunds wr
      ON wr.owner_id = q.owner_id AND wr.location_id = q.location_id
     AND wr.check_id = q.check_id
    GROUP BY st.owner_id
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
       ws.window_spend, t.tier_id, COALESCE(b.balance_after, 0)
FROM states st
JOIN window_spend ws ON ws.owner_id = st.owner_id
JOIN tiers_reached t ON t.owner_id = st.owner_id AND t.tier_order = 1
LEFT JOIN balances b ON b.owner_id = st.owner_id;
