-- Desired pass of each member whose owner was recomputed: contact from the owner's latest
-- checks up to its state day (forename = Customer up to the first space, surname = the rest),
-- tier and points (balance rounded down) of that day, status.
DELETE FROM pass_states
WHERE EXISTS (SELECT 1 FROM loyalty_work_owners o WHERE o.external_id = pass_states.external_id);

-- The latest contact of each owner up to its state day: from its replayed checks, else the
-- checkpoint's (older than any of them). Every owner's, as the checkpoints keep them.
INSERT INTO loyalty_work_owner_contacts (owner_id, customer_name, email, phone)
WITH contacts AS (
    SELECT c.owner_id, c.customer_name, c.email, c.phone,
           c.business_date, c.location_id, c.check_id
    FROM loyalty_work_owner_checks c
    JOIN loyalty_work_owners o ON o.owner_id = c.owner_id
    JOIN loyalty_work_owner_states st ON st.owner_id = c.owner_id
    WHERE c.replayed AND c.business_date <= st.state_on
    UNION ALL
    SELECT o.owner_id, k.customer_name, k.email, k.phone, k.checkpoint_on, '', ''
    FROM loyalty_work_owners o
    JOIN loyalty_work_checkpoints k ON k.guest_id = o.guest_id
    WHERE o.checkpoint_on IS NOT NULL
),
latest_names AS (
    SELECT owner_id, customer_name
    FROM (SELECT owner_id, customer_name,
                 ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY business_date DESC,
                                    location_id DESC, check_id DESC) AS latest
          FROM contacts WHERE customer_name IS NOT NULL) ranked
    WHERE latest = 1
),
latest_emails AS (
    SELECT owner_id, email
    FROM (SELECT owner_id, email,
                 ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY business_date DESC,
                                    location_id DESC, check_id DESC) AS latest
          FROM contacts WHERE email IS NOT NULL) ranked
    WHERE latest = 1
),
latest_phones AS (
    SELECT owner_id, phone
    FROM (SELECT owner_id, phone,
                 ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY business_date DESC,
                                    location_id DESC, check_id DESC) AS latest
          FROM contacts WHERE phone IS NOT NULL) ranked
    WHERE latest = 1
)
SELECT o.owner_id, n.customer_name, e.email, p.phone
FROM loyalty_work_owners o
LEFT JOIN latest_names n ON n.owner_id = o.owner_id
LEFT JOIN latest_emails e ON e.owner_id = o.owner_id
LEFT JOIN latest_phones p ON p.owner_id = o.owner_id;

INSERT INTO pass_states (external_id, guest_id, forename, surname, email, phone, tier_id,
                         points, status, revoked_reason, revoked_on, enrolled_on, as_of)
WITH passes AS (
    SELECT o.external_id, o.guest_id,
           CASE WHEN STRPOS(ct.customer_name, ' ') > 0
                THEN SUBSTRING(ct.customer_name FROM 1 FOR STRPOS(ct.customer_name, ' ') - 1)
                ELSE ct.customer_name END AS forename,
           CASE WHEN STRPOS(ct.customer_name, ' ') > 0
                THEN TRIM(SUBSTRING(ct.customer_name FROM STRPOS(ct.customer_name, ' ') + 1))
                END AS surname,
           ct.email, ct.phone, st.tier_id,
           CAST(FLOOR(st.balance) AS INTEGER) AS points,
           CASE WHEN st.revoked_reason IS NULL THEN 'active' ELSE 'revoked' END AS status,
           st.revoked_reason, st.revoked_on, m.enrolled_on
    FROM loyalty_work_owners o
    JOIN loyalty_work_owner_states st ON st.owner_id = o.owner_id
    JOIN loyalty_members m ON m.external_id = o.external_id
    LEFT JOIN loyalty_work_owner_contacts ct ON ct.owner_id = o.owner_id
    WHERE o.external_id IS NOT NULL
)
SELECT external_id, guest_id, forename, surname, email, phone, tier_id, points, status,
       revoked_reason, revoked_on, enrolled_on, CAST(:as_of AS DATE)
FROM passes;
