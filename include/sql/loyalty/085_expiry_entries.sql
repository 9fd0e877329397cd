-- Expiry entries: for each absence of a guest that reached expire_points_after_days with a
-- balance left, an entry taking the balance to 0, dated last visit + that many days.
INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, location_id, check_id,
                            external_id, run_id, created_at)
SELECT b.entry_key, 'expiry', b.entry_date, -b.balance_before, a.last_location_id,
       a.last_check_id, o.external_id, :run_id, CURRENT_TIMESTAMP
FROM loyalty_work_balances b
JOIN loyalty_work_owners o ON o.owner_id = b.owner_id
JOIN loyalty_work_absences a
  ON a.owner_id = b.owner_id AND a.expires_on = b.entry_date
 AND b.entry_key = 'expiry|' || a.last_location_id || '|' || a.last_check_id
WHERE b.is_expiry AND o.owner_kind = 'guest' AND b.balance_before > 0
ON CONFLICT (entry_key) DO NOTHING;
