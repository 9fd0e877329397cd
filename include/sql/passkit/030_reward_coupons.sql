-- Item-reward coupons: one per (reward, check), as the loyalty engine issued them.
INSERT INTO passkit_sync_work_coupons (coupon_external_id, external_id, source,
                                       passkit_campaign_id, passkit_offer_id)
SELECT coupon_external_id, external_id, 'reward', passkit_campaign_id, passkit_offer_id
FROM pass_coupons;
