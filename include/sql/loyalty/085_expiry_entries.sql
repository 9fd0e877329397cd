-- Expiry entries: for each absence of a guest that reached expire_points_after_days with a
-- balance left, an entry taking the balance to 0, dated last visit + that many days, held by
-- the guest's carrying member when it was enrolled by then (none before enrolment, so a
-- later enrolment leaves the entry as it is).
-- Expiry entries are derived, not insert-only: for every recomputed guest (every guest in a
-- full run) the entries its whole history gives replace those written before. A later merge
-- that fills a gap in the visits, adds points before the absence, changes the carrying member
-- or the visit day's last check (the entry's natural key) removes or corrects an entry written
-- earlier, so loading day by day and loading at once give the same ledger. An entry that
-- stays as it was keeps its run_id and created_at.
INSERT INTO loyalty_work_derived_entries (entry_key, kind, entry_date, points, location_id,
                                          check_id, payment_id, external_id)
SELECT b.entry_key, 'expiry', b.entry_date, -b.balance_before, a.last_location_id,
       a.last_check_id, CAST(NULL AS VARCHAR),
       CASE WHEN o.enrolled_on <= b.entry_date THEN o.external_id END
FROM loyalty_work_balances b
JOIN loyalty_work_owners o ON o.owner_id = b.owner_id
JOIN loyalty_work_absences a
  ON a.owner_id = b.owner_id AND a.expires_on = b.entry_date
 AND b.entry_key = 'expiry|' || a.last_location_id || '|' || a.last_check_id
WHERE b.is_expiry AND o.owner_kind = 'guest' AND b.balance_before > 0;

-- Stale expiry entries: in a full run any, otherwise those of the recomputed guests' replayed
-- checks (two statements, so the second reads the ledger by check rather than scanning it):
-- the expiries before a guest's checkpoint stay as they are.
DELETE FROM loyalty_ledger
WHERE :full_run AND kind = 'expiry'
  AND NOT EXISTS (SELECT 1 FROM loyalty_work_derived_entries d
                  WHERE d.entry_key = loyalty_ledger.entry_key
                    AND d.entry_date = loyalty_ledger.entry_date
                    AND d.points = loyalty_ledger.points
                    AND d.check_id = loyalty_ledger.check_id
                    AND d.external_id IS NOT DISTINCT FROM loyalty_ledger.external_id);

DELETE FROM loyalty_ledger
WHERE kind = 'expiry'
  AND EXISTS (SELECT 1 FROM loyalty_work_owner_checks c
              JOIN loyalty_work_owners o ON o.owner_id = c.owner_id AND o.owner_kind = 'guest'
              WHERE c.replayed
                AND c.location_id = loyalty_ledger.location_id
                AND c.check_id = loyalty_ledger.check_id)
  AND NOT EXISTS (SELECT 1 FROM loyalty_work_derived_entries d
                  WHERE d.entry_key = loyalty_ledger.entry_key
                    AND d.entry_date = loyalty_ledger.entry_date
                    AND d.points = loyalty_ledger.points
                    AND d.check_id = loyalty_ledger.check_id
                    AND d.external_id IS NOT DISTINCT FROM loyalty_ledger.external_id);

INSERT INTO loyalty_ledger (entry_key, kind, entry_date, points, location_id, check_id,
                            external_id, run_id, created_at)
SELECT entry_key, kind, entry_date, points, location_id, check_id, external_id, :run_id,
       CURRENT_TIMESTAMP
FROM loyalty_work_derived_entries
WHERE kind = 'expiry'
ON CONFLICT (entry_key) DO NOTHING;
