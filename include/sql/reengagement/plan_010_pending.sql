-- Re-engagements due by the plan date that have no action yet, with what decides their channel (the
-- pass's install state and status) and the member's contact details (for the audience).
SELECT r.external_id, r.absence_key, r.reason, r.due_on,
       pa.state AS pass_state, ps.status AS pass_status,
       ps.email, ps.phone, ps.forename
FROM reengagements r
LEFT JOIN pass_activity pa ON pa.member_external_id = r.external_id
LEFT JOIN pass_states ps ON ps.external_id = r.external_id
WHERE r.due_on <= CAST(:as_of AS DATE)
  AND NOT EXISTS (
      SELECT 1 FROM reengagement_actions a
      WHERE a.external_id = r.external_id AND a.absence_key = r.absence_key)
ORDER BY r.due_on, r.external_id, r.absence_key;
