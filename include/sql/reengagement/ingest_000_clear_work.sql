-- Webhook ingest, one batch in one transaction: empty the scratch tables of the last batch.
DELETE FROM pass_event_work;
DELETE FROM pass_activity_work;
