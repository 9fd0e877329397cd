-- Write the member rows staged in passkit_sync_work_member_rows (one per member). applied_hash
-- uses the same expression as desired_hash in 040_desired_members.sql.
INSERT INTO passkit_sync_members (
    external_id, passkit_member_id, applied_status, applied_revoke_mode, applied_tier_id,
    applied_points, applied_person_hash, applied_message, applied_hash, applied_at,
    points_sequence, sync_state, op_calls, op_desired_hash, op_event_id, op_from_points,
    op_to_points, op_tier_id, attempts, next_attempt_at, last_status_code, last_error,
    last_run_id, updated_at)
SELECT external_id, passkit_member_id, applied_status, applied_revoke_mode, applied_tier_id,
       applied_points, applied_person_hash, applied_message,
       CASE WHEN applied_status = 'revoked' THEN MD5('revoked|' || applied_revoke_mode)
            WHEN applied_status = 'active'
                THEN MD5('active|' || applied_tier_id || '|'
                         || CAST(CAST(applied_points AS DECIMAL(12,2)) AS VARCHAR) || '|'
                         || applied_person_hash || '|' || COALESCE(applied_message, ''))
       END,
       applied_at, points_sequence, sync_state, op_calls, op_desired_hash, op_event_id,
       op_from_points, op_to_points, op_tier_id, attempts, next_attempt_at, last_status_code,
       last_error, last_run_id, updated_at
FROM passkit_sync_work_member_rows
ON CONFLICT (external_id) DO UPDATE SET
    passkit_member_id = EXCLUDED.passkit_member_id,
    applied_status = EXCLUDED.applied_status,
    applied_revoke_mode = EXCLUDED.applied_revoke_mode,
    applied_tier_id = EXCLUDED.applied_tier_id,
    applied_points = EXCLUDED.applied_points,
    applied_person_hash = EXCLUDED.applied_person_hash,
    applied_message = EXCLUDED.applied_message,
    applied_hash = EXCLUDED.applied_hash,
    applied_at = EXCLUDED.applied_at,
    points_sequence = EXCLUDED.points_sequence,
    sync_state = EXCLUDED.sync_state,
    op_calls = EXCLUDED.op_calls,
    op_desired_hash = EXCLUDED.op_desired_hash,
    op_event_id = EXCLUDED.op_event_id,
    op_from_points = EXCLUDED.op_from_points,
    op_to_points = EXCLUDED.op_to_points,
    op_tier_id = EXCLUDED.op_tier_id,
    attempts = EXCLUDED.attempts,
    next_attempt_at = EXCLUDED.next_attempt_at,
    last_status_code = EXCLUDED.last_status_code,
    last_error = EXCLUDED.last_error,
    last_run_id = EXCLUDED.last_run_id,
    updated_at = EXCLUDED.updated_at;

DELETE FROM passkit_sync_work_member_rows;
