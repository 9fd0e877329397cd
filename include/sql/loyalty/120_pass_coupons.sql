-- Item-reward coupons: one per (reward, qualifying check) once a member holds the check
-- (issued on that day: the check's day, or the enrolment day for checks made before it), to
-- the member that first held it. Never issued twice, never withdrawn. An incremental run
-- looks only at checks a member came to hold since the previous run's day (covered_on):
-- the others got theirs then (a new reward changes the program: a full run). Those are
-- this run's checks (every check in a full run) and the older checks 030 rewrote for a
-- member's cover: read from the run's work tables, not from loyalty_checks.
-- One already issued is skipped by an anti join on its id rather than by ON CONFLICT, which
-- DuckDB plans as a join with the whole table; a LEFT JOIN ... IS NULL rather than NOT EXISTS
-- (a mark join hashing every coupon ever issued, see 130_reengagements.sql).
INSERT INTO pass_coupons (coupon_external_id, external_id, reward_id, location_id, check_id,
                          passkit_campaign_id, passkit_offer_id, issued_on, run_id)
SELECT due.coupon_external_id, due.external_id, due.reward_id, due.location_id, due.check_id,
       due.passkit_campaign_id, due.passkit_offer_id, due.issued_on, :run_id
FROM (SELECT 'cpn' || SUBSTRING(MD5(r.reward_id || '|' || c.location_id || '|' || c.check_id)
                                FROM 1 FOR 21) AS coupon_external_id,
             c.covered_by AS external_id, r.reward_id, c.location_id, c.check_id,
             reward.passkit_campaign_id, reward.passkit_offer_id, c.covered_on AS issued_on
      FROM (SELECT w.location_id, w.check_id, w.qualifying, i.covered_by, i.covered_on
            FROM loyalty_work_checks w
            JOIN loyalty_work_identities i
              ON i.location_id = w.location_id AND i.check_id = w.check_id
            UNION ALL
            SELECT location_id, check_id, qualifying, covered_by, covered_on
            FROM loyalty_work_history
            WHERE rewritten) c
      JOIN loyalty_check_rewards r
        ON r.location_id = c.location_id AND r.check_id = c.check_id
      JOIN (SELECT DISTINCT reward_id, passkit_campaign_id, passkit_offer_id
            FROM loyalty_program_rewards) reward ON reward.reward_id = r.reward_id
      WHERE c.qualifying AND c.covered_by IS NOT NULL AND c.covered_on <= CAST(:as_of AS DATE)
        AND (:full_run OR c.covered_on > CAST(:previous_as_of AS DATE))) due
LEFT JOIN pass_coupons issued ON issued.coupon_external_id = due.coupon_external_id
WHERE issued.coupon_external_id IS NULL;
