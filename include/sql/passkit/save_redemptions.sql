-- Record staff redemptions read back from PassKit (POINTS_BURNED member events the sync did
-- not make); an event already recorded is not recorded twice.
INSERT INTO passkit_redemptions (passkit_event_id, member_external_id, points, recorded_at)
SELECT w.passkit_event_id, MIN(w.member_external_id), MIN(w.points), MIN(w.recorded_at)
FROM passkit_sync_work_redemptions w
WHERE NOT EXISTS (SELECT 1 FROM passkit_redemptions r
                  WHERE r.passkit_event_id = w.passkit_event_id)
GROUP BY w.passkit_event_id;

DELETE FROM passkit_sync_work_redemptions;
