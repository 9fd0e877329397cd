-- The diff: members whose desired pass differs from what PassKit holds, and are due, with
-- the calls that close the gap. Members with a call in flight ('sent', 'uncertain') are
-- reconciled first and are not planned here. A 'failed' member is due at next_attempt_at, or
-- at once when its desired state changed; a 'given_up' member only when it changed.
--   needs_enrol       not in PassKit (new, deleted by a 'delete' revocation, or found
--                     missing): one enrol call carries tier, balance, person and message
--   needs_reactivate  expired pass that is active again: a future expiry date
--   needs_expire      pass to revoke in 'expire' mode (fields are brought up to date first)
--   needs_delete      pass to revoke in 'delete' mode
--   points_delta      desired balance minus the last applied one: an earn or a burn
--   needs_tier / needs_person / needs_message: fields to change (no field is ever sent to a
--                     revoked pass)
WITH candidates AS (
    SELECT d.external_id, d.status, d.revoke_mode, d.revoked_on, d.tier_id, d.points,
           d.person_hash, d.message, d.desired_hash,
           p.forename, p.surname, p.email, p.phone,
           s.passkit_member_id, s.applied_status, s.applied_revoke_mode, s.applied_tier_id,
           s.applied_points, s.applied_person_hash, s.applied_message, s.applied_at,
           COALESCE(s.points_sequence, 0) AS points_sequence,
           COALESCE(s.sync_state, 'new') AS sync_state,
           COALESCE(s.attempts, 0) AS attempts,
           s.next_attempt_at, s.last_status_code, s.last_error, s.op_desired_hash,
           (d.status = 'active'
            AND (s.applied_status IS NULL
                 OR (s.applied_status = 'revoked' AND s.applied_revoke_mode = 'delete')))
               AS needs_enrol,
           (d.status = 'active' AND s.applied_status = 'revoked'
            AND s.applied_revoke_mode = 'expire') AS needs_reactivate,
           (d.status = 'revoked' AND s.applied_status = 'active' AND d.revoke_mode = 'expire')
               AS needs_expire,
           (d.status = 'revoked' AND d.revoke_mode = 'delete'
            AND (s.applied_status = 'active'
                 OR (s.applied_status = 'revoked' AND s.applied_revoke_mode = 'expire')))
               AS needs_delete
    FROM passkit_sync_work_desired d
    JOIN pass_states p ON p.external_id = d.external_id
    LEFT JOIN passkit_sync_members s ON s.external_id = d.external_id
    WHERE (s.external_id IS NULL AND d.status = 'active')
       OR (s.external_id IS NOT NULL
           AND s.applied_hash IS DISTINCT FROM d.desired_hash
           AND NOT (d.status = 'revoked' AND s.applied_status IS NULL)
           AND (s.sync_state IN ('synced', 'pending')
                OR (s.sync_state = 'failed'
                    AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= :now
                         OR s.op_desired_hash IS DISTINCT FROM d.desired_hash))
                OR (s.sync_state = 'given_up'
                    AND s.op_desired_hash IS DISTINCT FROM d.desired_hash)))
),
flagged AS (
    SELECT c.*,
           ((c.status = 'active' AND NOT c.needs_enrol) OR c.needs_expire) AS updatable
    FROM candidates c
)
SELECT f.*,
       CASE WHEN f.updatable THEN f.points - COALESCE(f.applied_points, 0)
            ELSE CAST(0 AS DECIMAL(12,2)) END AS points_delta,
       (f.updatable AND f.tier_id IS DISTINCT FROM f.applied_tier_id) AS needs_tier,
       (f.updatable AND f.person_hash IS DISTINCT FROM f.applied_person_hash) AS needs_person,
       (f.updatable AND COALESCE(f.message, '') <> COALESCE(f.applied_message, ''))
           AS needs_message
FROM flagged f
ORDER BY f.external_id;
