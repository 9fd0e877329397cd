-- One row per re-engagement action due in the report window: its absence, arm and channel,
-- and whether the member came back, i.e. made a qualifying visit in the days after the due
-- date (due_on, due_on + return window]. The member's visits are its guest's checks
-- (guest_spend links the member to its guest; loyalty_checks holds the guest's checks).
WITH actions AS (
    SELECT DISTINCT external_id, absence_key, arm, channel, due_on
    FROM reengagement_actions
    WHERE due_on BETWEEN CAST(:due_from AS DATE) AND CAST(:due_to AS DATE)
),
returns AS (
    SELECT DISTINCT a.external_id, a.absence_key
    FROM actions a
    JOIN guest_spend g ON g.external_id = a.external_id
    JOIN loyalty_checks c ON c.guest_id = g.guest_id
    WHERE c.qualifying
      AND c.business_date > a.due_on
      AND c.business_date <= a.due_on + CAST(:return_window_days AS INTEGER)
)
SELECT a.external_id, a.absence_key, a.arm, a.channel,
       CASE WHEN r.external_id IS NULL THEN 0 ELSE 1 END AS returned
FROM actions a
LEFT JOIN returns r ON r.external_id = a.external_id AND r.absence_key = a.absence_key
ORDER BY a.external_id, a.absence_key, a.channel;
