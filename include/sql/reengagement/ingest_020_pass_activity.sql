-- The current pass state of every member the batch touched, recomputed from all the member's
-- membership pass events, so that the order in which PassKit delivered them never matters.
-- Each event gives observations "state S at time T": an install / uninstall / invalidation
-- event its own state at occurred_at, and the metadata of any event its install, uninstall
-- and invalidation timestamps. The latest observation is the state (at equal times:
-- invalidated, then uninstalled, then installed); install times are the earliest and latest
-- 'installed' observations; updated_at is the time of the latest observation.
-- Events that name the pass but not the member find it through another event of that pass.
INSERT INTO pass_activity_work (member_external_id, pass_id, state, first_installed_at,
                                last_installed_at, last_uninstalled_at, updated_at)
WITH pass_members AS (
    SELECT pass_id, MAX(member_external_id) AS member_external_id
    FROM pass_events
    WHERE pass_kind = 'membership' AND pass_id IS NOT NULL AND member_external_id IS NOT NULL
    GROUP BY pass_id
),
membership_events AS (
    SELECT e.event_key, e.event_type, e.pass_id, e.occurred_at, e.first_installed_at,
           e.last_installed_at, e.last_uninstalled_at, e.invalidated_at,
           COALESCE(e.member_external_id, pm.member_external_id) AS member_external_id
    FROM pass_events e
    LEFT JOIN pass_members pm ON pm.pass_id = e.pass_id
    WHERE e.pass_kind = 'membership'
),
touched AS (
    SELECT DISTINCT m.member_external_id
    FROM membership_events m
    JOIN pass_event_work w ON w.event_key = m.event_key
    WHERE m.member_external_id IS NOT NULL
),
member_events AS (
    SELECT m.*
    FROM membership_events m
    JOIN touched t ON t.member_external_id = m.member_external_id
),
observations AS (
    SELECT member_external_id, pass_id,
           CASE event_type WHEN 'PASS_EVENT_INSTALLED' THEN 'installed'
                           WHEN 'PASS_EVENT_UNINSTALLED' THEN 'uninstalled'
                           ELSE 'invalidated' END AS state,
           occurred_at AS observed_at
    FROM member_events
    WHERE event_type IN ('PASS_EVENT_INSTALLED', 'PASS_EVENT_UNINSTALLED',
                         'PASS_EVENT_INVALIDATED')
    UNION ALL
    SELECT member_external_id, pass_id, 'installed', first_installed_at
    FROM member_events WHERE first_installed_at IS NOT NULL
    UNION ALL
    SELECT member_external_id, pass_id, 'installed', last_installed_at
    FROM member_events WHERE last_installed_at IS NOT NULL
    UNION ALL
    SELECT member_external_id, pass_id, 'uninstalled', last_uninstalled_at
    FROM member_events WHERE last_uninstalled_at IS NOT NULL
    UNION ALL
    SELECT member_external_id, pass_id, 'invalidated', invalidated_at
    FROM member_events WHERE invalidated_at IS NOT NULL
),
latest AS (
    SELECT member_external_id, pass_id, state,
           ROW_NUMBER() OVER (
               PARTITION BY member_external_id
               ORDER BY observed_at DESC,
                        CASE state WHEN 'invalidated' THEN 0 WHEN 'uninstalled' THEN 1
                                   ELSE 2 END,
                        pass_id NULLS LAST
           ) AS recency
    FROM observations
),
times AS (
    SELECT member_external_id,
           MIN(CASE WHEN state = 'installed' THEN observed_at END) AS first_installed_at,
           MAX(CASE WHEN state = 'installed' THEN observed_at END) AS last_installed_at,
           MAX(CASE WHEN state = 'uninstalled' THEN observed_at END) AS last_uninstalled_at,
           MAX(observed_at) AS updated_at,
           MAX(pass_id) AS any_pass_id
    FROM observations
    GROUP BY member_external_id
)
SELECT t.member_external_id, COALESCE(l.pass_id, t.any_pass_id), l.state,
       t.first_installed_at, t.last_installed_at, t.last_uninstalled_at, t.updated_at
FROM times t
JOIN latest l ON l.member_external_id = t.member_external_id AND l.recency = 1;
