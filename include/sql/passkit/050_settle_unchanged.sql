-- Members with outstanding work whose desired pass is what PassKit already holds (the
-- desired state moved back, or a reconciliation found the call applied): nothing left to do.
-- A member never enrolled whose pass is now revoked has nothing to do either.
UPDATE passkit_sync_members
SET sync_state = 'synced', attempts = 0, next_attempt_at = NULL, last_status_code = NULL,
    last_error = NULL, op_calls = NULL, op_desired_hash = NULL, op_event_id = NULL,
    op_from_points = NULL, op_to_points = NULL, op_tier_id = NULL, updated_at = :now
WHERE sync_state IN ('pending', 'failed', 'given_up')
  AND EXISTS (SELECT 1 FROM passkit_sync_work_desired d
              WHERE d.external_id = passkit_sync_members.external_id
                AND (d.desired_hash = passkit_sync_members.applied_hash
                     OR (d.status = 'revoked' AND passkit_sync_members.applied_status IS NULL)));
