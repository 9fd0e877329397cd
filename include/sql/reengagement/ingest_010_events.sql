-- Store the batch's events that are new: the first line per event_key within the batch, and
-- only when no earlier batch stored that event_key (redeliveries, a re-read after a crash).
INSERT INTO pass_events (event_key, delivery_id, event_type, pass_kind, pass_id, class_id,
                         member_external_id, protocol, status, occurred_at, occurred_at_source,
                         first_installed_at, last_installed_at, last_uninstalled_at,
                         invalidated_at, points, tier_id, coupon_id, coupon_external_id,
                         coupon_campaign_id, warnings, received_at, source_file, source_offset,
                         ingested_at)
SELECT w.event_key, w.delivery_id, w.event_type, w.pass_kind, w.pass_id, w.class_id,
       w.member_external_id, w.protocol, w.status, w.occurred_at, w.occurred_at_source,
       w.first_installed_at, w.last_installed_at, w.last_uninstalled_at,
       w.invalidated_at, w.points, w.tier_id, w.coupon_id, w.coupon_external_id,
       w.coupon_campaign_id, w.warnings, w.received_at, w.source_file, w.source_offset,
       CAST(:ingested_at AS TIMESTAMPTZ)
FROM (
    SELECT pw.*, ROW_NUMBER() OVER (PARTITION BY pw.event_key ORDER BY pw.seq) AS copy_number
    FROM pass_event_work pw
) w
WHERE w.copy_number = 1
  AND NOT EXISTS (SELECT 1 FROM pass_events e WHERE e.event_key = w.event_key);
