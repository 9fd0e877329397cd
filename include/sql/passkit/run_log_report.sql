-- What one run did: calls and findings per operation and outcome (counts only).
SELECT operation, outcome, COUNT(*) AS entries
FROM passkit_sync_log
WHERE run_id = :run_id
GROUP BY operation, outcome
ORDER BY operation, outcome;
