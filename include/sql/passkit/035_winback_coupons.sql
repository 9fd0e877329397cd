-- Win-back coupons (run only when reengagement_actions exists): treated 'coupon' actions due
-- by the business date. A coupon id already listed as an item reward is not added twice.
INSERT INTO passkit_sync_work_coupons (coupon_external_id, external_id, source,
                                       passkit_campaign_id, passkit_offer_id)
SELECT coupon_external_id, external_id, 'winback', passkit_campaign_id, passkit_offer_id
FROM (SELECT a.coupon_external_id, a.external_id, a.passkit_campaign_id, a.passkit_offer_id,
             ROW_NUMBER() OVER (PARTITION BY a.coupon_external_id
                                ORDER BY a.due_on, a.created_at, a.absence_key) AS first_seen
      FROM reengagement_actions a
      WHERE a.arm = 'treated' AND a.channel = 'coupon'
        AND a.coupon_external_id IS NOT NULL AND a.passkit_campaign_id IS NOT NULL
        AND a.passkit_offer_id IS NOT NULL
        AND a.due_on <= CAST(:as_of AS DATE)) ranked
WHERE first_seen = 1
  AND NOT EXISTS (SELECT 1 FROM passkit_sync_work_coupons w
                  WHERE w.coupon_external_id = ranked.coupon_external_id);
