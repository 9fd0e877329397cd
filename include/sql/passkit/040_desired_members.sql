-- The desired pass of every member, as PassKit must hold it after this sync.
--   points: the ledger balance (pass_states.points) less the redemptions already read back
--     from PassKit that the ledger has not counted yet: PassKit's balance already lost them,
--     so they must not be burned a second time (nor credited back).
--   message: the latest re-engagement message; a message once shown stays (PassKit updates
--     cannot clear a field).
--   revoke_mode: the program's, except that a deleted member stays deleted.
--   desired_hash: what the sync compares with passkit_sync_members.applied_hash; a revoked
--     pass is never updated, so its hash is only its status and mode. save_members.sql
--     computes applied_hash with the same expression.
INSERT INTO passkit_sync_work_desired (external_id, status, revoke_mode, revoked_on, tier_id,
                                       points, ledger_points, unledgered_points, person_hash,
                                       message, desired_hash)
WITH unledgered AS (
    SELECT r.member_external_id AS external_id, SUM(r.points) AS points
    FROM passkit_redemptions r
    WHERE NOT EXISTS (SELECT 1 FROM loyalty_ledger l
                      WHERE l.entry_key = 'redemption|' || r.passkit_event_id)
    GROUP BY r.member_external_id
),
desired AS (
    SELECT p.external_id, p.status,
           CASE WHEN s.applied_revoke_mode = 'delete' THEN 'delete'
                ELSE CAST(:revoke_mode AS VARCHAR) END AS revoke_mode,
           p.revoked_on, p.tier_id,
           CAST(GREATEST(p.points - COALESCE(u.points, 0), 0) AS DECIMAL(12,2)) AS points,
           p.points AS ledger_points,
           CAST(COALESCE(u.points, 0) AS DECIMAL(12,2)) AS unledgered_points,
           MD5(COALESCE(p.forename, '') || '|' || COALESCE(p.surname, '') || '|'
               || COALESCE(p.email, '') || '|' || COALESCE(p.phone, '')) AS person_hash,
           COALESCE(m.message, s.applied_message) AS message
    FROM pass_states p
    LEFT JOIN unledgered u ON u.external_id = p.external_id
    LEFT JOIN passkit_sync_work_messages m ON m.external_id = p.external_id
    LEFT JOIN passkit_sync_members s ON s.external_id = p.external_id
)
SELECT external_id, status, revoke_mode, revoked_on, tier_id, points, ledger_points,
       unledgered_points, person_hash, message,
       CASE WHEN status = 'revoked' THEN MD5('revoked|' || revoke_mode)
            ELSE MD5('active|' || tier_id || '|' || CAST(points AS VARCHAR) || '|'
                     || person_hash || '|' || COALESCE(message, '')) END
FROM desired;
