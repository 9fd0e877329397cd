-- Item rewards a check earns: one row per (check, reward) with a non-voided line of one of
-- the reward's menu items (names trimmed, case-insensitive). Coupons need a qualifying check.
-- postgresql: SET enable_nestloop = off
INSERT INTO loyalty_check_rewards (location_id, check_id, reward_id)
SELECT DISTINCT c.location_id, c.check_id, r.reward_id
FROM loyalty_work_checks c
JOIN stg_item_lines l
  ON l.location_id = c.location_id AND l.business_date = c.business_date
 AND l.check_id = c.check_id
JOIN loyalty_program_rewards r
  ON r.menu_item_key = LOWER(TRIM(l.menu_item))
WHERE NOT l.voided AND l.business_date BETWEEN CAST(:work_from AS DATE) AND CAST(:work_to AS DATE);
