-- Write the coupon rows staged in passkit_sync_work_coupon_rows (one per coupon).
INSERT INTO passkit_sync_coupons (
    coupon_external_id, external_id, source, passkit_campaign_id, passkit_offer_id,
    passkit_coupon_id, sync_state, attempts, next_attempt_at, last_status_code, last_error,
    issued_at, last_run_id, updated_at)
SELECT coupon_external_id, external_id, source, passkit_campaign_id, passkit_offer_id,
       passkit_coupon_id, sync_state, attempts, next_attempt_at, last_status_code, last_error,
       issued_at, last_run_id, updated_at
FROM passkit_sync_work_coupon_rows
ON CONFLICT (coupon_external_id) DO UPDATE SET
    external_id = EXCLUDED.external_id,
    source = EXCLUDED.source,
    passkit_campaign_id = EXCLUDED.passkit_campaign_id,
    passkit_offer_id = EXCLUDED.passkit_offer_id,
    passkit_coupon_id = EXCLUDED.passkit_coupon_id,
    sync_state = EXCLUDED.sync_state,
    attempts = EXCLUDED.attempts,
    next_attempt_at = EXCLUDED.next_attempt_at,
    last_status_code = EXCLUDED.last_status_code,
    last_error = EXCLUDED.last_error,
    issued_at = EXCLUDED.issued_at,
    last_run_id = EXCLUDED.last_run_id,
    updated_at = EXCLUDED.updated_at;

DELETE FROM passkit_sync_work_coupon_rows;
