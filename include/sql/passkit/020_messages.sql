-- Re-engagement messages to show on passes (run only when reengagement_actions exists): the
-- latest treated 'pass_message' action due by the business date, per member. Control and
-- audience rows send nothing.
INSERT INTO passkit_sync_work_messages (external_id, message)
SELECT external_id, message
FROM (SELECT external_id, message,
             ROW_NUMBER() OVER (PARTITION BY external_id
                                ORDER BY due_on DESC, created_at DESC, absence_key DESC) AS latest
      FROM reengagement_actions
      WHERE arm = 'treated' AND channel = 'pass_message'
        AND message IS NOT NULL AND message <> ''
        AND due_on <= CAST(:as_of AS DATE)) ranked
WHERE latest = 1;
