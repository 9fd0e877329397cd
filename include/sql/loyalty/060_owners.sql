-- Owners whose balance, tier and status this run computes, with their checks and members:
--   'guest'  each recomputed guest as of the run's day, its checks, all its members'
--            redemptions and the welcome bonus of its carrying (first-enrolled) member
--   'merged' each member joined into an earlier-enrolled member's guest and not yet frozen,
--            as of the day before the merge, over the checks it (or members merged into it)
--            covered: its pass keeps that state
INSERT INTO loyalty_work_owners (owner_id, owner_kind, guest_id, external_id, enrolled_on,
                                 eval_on)
SELECT 'guest|' || g.guest_id, 'guest', g.guest_id, g.carrier_external_id,
       g.carrier_enrolled_on, CAST(:as_of AS DATE)
FROM loyalty_guests g
JOIN loyalty_work_guests w ON w.guest_id = g.guest_id;

INSERT INTO loyalty_work_owners (owner_id, owner_kind, guest_id, external_id, enrolled_on,
                                 eval_on)
SELECT 'member|' || m.external_id, 'merged', m.guest_id, m.external_id, m.enrolled_on,
       m.merged_on - 1
FROM loyalty_members m
WHERE m.merged_into IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM pass_states ps
                  WHERE ps.external_id = m.external_id AND ps.revoked_reason = 'merged');

INSERT INTO loyalty_work_owner_checks (owner_id, location_id, check_id, business_date,
                                       qualifying, eligible_spend, customer_name, email, phone)
SELECT o.owner_id, c.location_id, c.check_id, c.business_date, c.qualifying,
       c.eligible_spend, c.customer_name, c.email, c.phone
FROM loyalty_work_owners o
JOIN loyalty_checks c ON c.guest_id = o.guest_id
WHERE o.owner_kind = 'guest';

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

INSERT INTO loyalty_work_owner_checks (owner_id, location_id, check_id, business_date,
                                       qualifying, eligible_spend, customer_name, email, phone)
SELECT om.owner_id, c.location_id, c.check_id, c.business_date, c.qualifying,
       c.eligible_spend, c.customer_name, c.email, c.phone
FROM loyalty_work_owner_members om
JOIN loyalty_work_owners o ON o.owner_id = om.owner_id
JOIN loyalty_checks c ON c.covered_by = om.external_id
WHERE o.owner_kind = 'merged';
