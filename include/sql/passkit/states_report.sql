-- Members and coupons per sync state, for the run report (counts only).
SELECT 'member' AS record, sync_state, COUNT(*) AS records
FROM passkit_sync_members
GROUP BY sync_state
UNION ALL
SELECT 'coupon' AS record, sync_state, COUNT(*) AS records
FROM passkit_sync_coupons
GROUP BY sync_state
ORDER BY record, sync_state;
