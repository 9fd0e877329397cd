-- Coupons whose issue call's outcome is not known yet and is due for reconciliation.
SELECT coupon_external_id, external_id, source, passkit_campaign_id, passkit_offer_id,
       passkit_coupon_id, sync_state, attempts, next_attempt_at, last_status_code, last_error,
       issued_at, last_run_id, updated_at
FROM passkit_sync_coupons
WHERE sync_state IN ('sent', 'uncertain')
  AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
ORDER BY coupon_external_id;
