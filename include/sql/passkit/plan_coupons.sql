-- Coupons to issue: listed in the work table, not issued yet, and due. Only coupons of
-- members whose desired pass is active (a revoked member's coupons wait for reinstatement).
-- member_applied_status: whether the member's pass is in PassKit now (the sync issues a
-- coupon after its member's own calls succeed).
SELECT w.coupon_external_id, w.external_id, w.source, w.passkit_campaign_id,
       w.passkit_offer_id, c.passkit_coupon_id,
       COALESCE(c.sync_state, 'new') AS sync_state,
       COALESCE(c.attempts, 0) AS attempts,
       c.next_attempt_at, c.last_status_code, c.last_error, c.issued_at,
       s.applied_status AS member_applied_status
FROM passkit_sync_work_coupons w
JOIN passkit_sync_work_desired d ON d.external_id = w.external_id
LEFT JOIN passkit_sync_coupons c ON c.coupon_external_id = w.coupon_external_id
LEFT JOIN passkit_sync_members s ON s.external_id = w.external_id
WHERE d.status = 'active'
  AND (c.coupon_external_id IS NULL
       OR c.sync_state = 'pending'
       OR (c.sync_state = 'failed' AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= :now)))
ORDER BY w.external_id, w.coupon_external_id;
