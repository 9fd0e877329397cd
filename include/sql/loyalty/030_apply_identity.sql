-- Write the identity pass back (its output is in loyalty_work_identities, _identifiers,
-- _guest_remap, _covers, _guest_rows, _member_rows, _member_merges): checks get their guest and covering
-- member, guests joined into an older guest take its id, members follow their guest.

-- Existing checks of the guests this run rewrites or replays whole for a merge, moved out of
-- loyalty_checks into loyalty_work_history (as they are after this model: guest ids after the
-- remap) and written back below:
--   rewritten  checks whose guest got a member in this run (covered_by, covered_on) or joined
--              an older guest (guest_id)
--   the others of those guests, of the guests they joined, of members joined into another
--              one and not yet frozen, and of guests with a new check whose checkpoint is
--              missing (a revoked guest coming back) or holds no qualifying check left: 060
--              replays these guests from their first check (and reads the checks of the
--              others it so replays itself).
-- One DELETE ... RETURNING rather than a read and a delete of the rewritten ones: these checks
-- lie scattered over the whole history, and finding them is a scan of the whole table (DuckDB
-- decompresses every vector holding one of them), once instead of twice. They are written
-- back by insert rather than UPDATE: DuckDB rewrites every column segment an UPDATE touches at
-- checkpoint.
WITH moved AS (
    DELETE FROM loyalty_checks
    WHERE guest_id IN (SELECT guest_id FROM loyalty_work_covers
                       UNION ALL
                       SELECT old_guest_id FROM loyalty_work_guest_remap
                       UNION ALL
                       SELECT new_guest_id FROM loyalty_work_guest_remap
                       UNION ALL
                       SELECT m.guest_id
                       FROM loyalty_members m
                       WHERE m.merged_into IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM pass_states ps
                                         WHERE ps.external_id = m.external_id
                                           AND ps.revoked_reason = 'merged')
                       UNION ALL
                       -- (an anti join by LEFT JOIN: NOT EXISTS hashes every checkpoint)
                       SELECT g.guest_id
                       FROM loyalty_work_guest_rows g
                       LEFT JOIN loyalty_guest_checkpoints k
                         ON k.guest_id = g.guest_id AND k.qualifying_checks > k.refunded_checks
                       WHERE g.first_business_date <= CAST(:previous_as_of AS DATE)
                         AND k.guest_id IS NULL)
    RETURNING location_id, check_id, business_date, voided, eligible_spend, qualifying, email,
              phone, customer_id, customer_name, guest_id, covered_by, covered_on
)
INSERT INTO loyalty_work_history (location_id, check_id, business_date, voided, eligible_spend,
                                  qualifying, email, phone, customer_id, customer_name,
                                  guest_id, covered_by, covered_on, rewritten)
SELECT c.location_id, c.check_id, c.business_date, c.voided, c.eligible_spend, c.qualifying,
       c.email, c.phone, c.customer_id, c.customer_name,
       COALESCE(remap.new_guest_id, c.guest_id),
       CASE WHEN c.covered_by IS NULL AND cover.guest_id IS NOT NULL
            THEN cover.external_id ELSE c.covered_by END,
       CASE WHEN c.covered_by IS NULL AND cover.guest_id IS NOT NULL
            THEN cover.covered_on ELSE c.covered_on END,
       remap.old_guest_id IS NOT NULL OR (cover.guest_id IS NOT NULL AND c.covered_by IS NULL)
FROM moved c
LEFT JOIN loyalty_work_covers cover ON cover.guest_id = c.guest_id
LEFT JOIN loyalty_work_guest_remap remap ON remap.old_guest_id = c.guest_id;

INSERT INTO loyalty_checks (location_id, check_id, business_date, voided, eligible_spend,
                            qualifying, email, phone, customer_id, customer_name, guest_id,
                            covered_by, covered_on)
SELECT location_id, check_id, business_date, voided, eligible_spend, qualifying, email, phone,
       customer_id, customer_name, guest_id, covered_by, covered_on
FROM loyalty_work_history;

INSERT INTO loyalty_work_identifiers (identifier, guest_id)
SELECT i.identifier, remap.new_guest_id
FROM loyalty_identifiers i
JOIN loyalty_work_guest_remap remap ON remap.old_guest_id = i.guest_id;

DELETE FROM loyalty_identifiers
WHERE EXISTS (SELECT 1 FROM loyalty_work_guest_remap remap
              WHERE remap.old_guest_id = loyalty_identifiers.guest_id);

-- In business-date order, so that reads of a date range (a full run writes every check)
-- skip the other row groups.
INSERT INTO loyalty_checks (location_id, check_id, business_date, voided, eligible_spend,
                            qualifying, email, phone, customer_id, customer_name, guest_id,
                            covered_by, covered_on)
SELECT c.location_id, c.check_id, c.business_date, c.voided, c.eligible_spend, c.qualifying,
       c.email, phone.phone_e164, c.customer_id, c.customer_name, i.guest_id, i.covered_by,
       i.covered_on
FROM loyalty_work_checks c
JOIN loyalty_work_identities i
  ON i.location_id = c.location_id AND i.check_id = c.check_id
CROSS JOIN loyalty_program_settings s
LEFT JOIN loyalty_phone_numbers phone
  ON phone.raw_phone = c.raw_phone AND phone.region = s.default_phone_region
ORDER BY c.business_date;

INSERT INTO loyalty_identifiers (identifier, guest_id)
SELECT identifier, guest_id FROM loyalty_work_identifiers;

DELETE FROM loyalty_guests
WHERE EXISTS (SELECT 1 FROM loyalty_work_guest_remap remap
              WHERE remap.old_guest_id = loyalty_guests.guest_id)
   OR EXISTS (SELECT 1 FROM loyalty_work_guest_rows guest
              WHERE guest.guest_id = loyalty_guests.guest_id);

INSERT INTO loyalty_guests (guest_id, first_business_date, first_location_id, first_check_id,
                            qualifying_checks, has_contact, first_visit_on, last_visit_on,
                            carrier_external_id, carrier_enrolled_on)
SELECT guest_id, first_business_date, first_location_id, first_check_id, qualifying_checks,
       has_contact, first_visit_on, last_visit_on, carrier_external_id, carrier_enrolled_on
FROM loyalty_work_guest_rows;

-- Members of earlier runs whose guest joined an older guest (guest_id) or who were joined into
-- another member (merged_into, merged_on) in this run, as they are after it: rewritten with
-- those enrolled in this run by delete + insert rather than UPDATE (see above).
INSERT INTO loyalty_work_member_rows (external_id, guest_id, enrolled_on, anchor_location_id,
                                      anchor_check_id, merged_into, merged_on)
SELECT m.external_id, COALESCE(remap.new_guest_id, m.guest_id), m.enrolled_on,
       m.anchor_location_id, m.anchor_check_id,
       CASE WHEN joined.external_id IS NULL THEN m.merged_into ELSE joined.merged_into END,
       CASE WHEN joined.external_id IS NULL THEN m.merged_on ELSE joined.merged_on END
-- (Two semi joins with the small work tables rather than an OR over two outer joins: DuckDB
-- then reads the other columns of those members' rows only.)
FROM (SELECT * FROM loyalty_members
      WHERE guest_id IN (SELECT old_guest_id FROM loyalty_work_guest_remap)
      UNION
      SELECT * FROM loyalty_members
      WHERE external_id IN (SELECT external_id FROM loyalty_work_member_merges)) m
LEFT JOIN loyalty_work_guest_remap remap ON remap.old_guest_id = m.guest_id
LEFT JOIN loyalty_work_member_merges joined ON joined.external_id = m.external_id
WHERE NOT EXISTS (SELECT 1 FROM loyalty_work_member_rows enrolled
                  WHERE enrolled.external_id = m.external_id);

-- Members enrolled or rewritten in this run (every member in a full recomputation).
DELETE FROM loyalty_members
WHERE :full_run
   OR EXISTS (SELECT 1 FROM loyalty_work_member_rows enrolled
              WHERE enrolled.external_id = loyalty_members.external_id);

INSERT INTO loyalty_members (external_id, guest_id, enrolled_on, anchor_location_id,
                             anchor_check_id, merged_into, merged_on)
SELECT external_id, guest_id, enrolled_on, anchor_location_id, anchor_check_id, merged_into,
       merged_on
FROM loyalty_work_member_rows;
