-- The audience planned on a date, for the CSV export (contact details: the CSV is PII). One
-- row per member: a member due for two absences at once (lapsed and uninstalled) is listed
-- once, with its latest absence.
SELECT external_id, absence_key, reason, due_on, email, phone, forename
FROM (
    SELECT a.*,
           ROW_NUMBER() OVER (PARTITION BY a.external_id
                              ORDER BY a.due_on DESC, a.absence_key DESC) AS recency
    FROM reengagement_audience a
    WHERE a.planned_on = CAST(:planned_on AS DATE)
) latest
WHERE recency = 1
ORDER BY due_on, external_id;
