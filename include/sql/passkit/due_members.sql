-- Members whose last call's outcome is not known yet and is due for reconciliation: 'sent'
-- rows (left by a crashed run) and 'uncertain' rows whose settle delay is over.
SELECT external_id, passkit_member_id, applied_status, applied_revoke_mode, applied_tier_id,
       applied_points, applied_person_hash, applied_message, applied_at, points_sequence,
       sync_state, op_calls, op_desired_hash, op_event_id, op_from_points, op_to_points,
       op_tier_id, attempts, next_attempt_at, last_status_code, last_error, last_run_id,
       updated_at
FROM passkit_sync_members
WHERE sync_state IN ('sent', 'uncertain')
  AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
ORDER BY external_id;
