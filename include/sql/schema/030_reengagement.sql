-- PassKit webhook events, pass activity ingest, and re-engagement actions, audience and report.
-- Runs unchanged on DuckDB and PostgreSQL. Groups:
--   pass_events, pass_event_rejects, webhook_watermarks   the ingested webhook log
--   pass_event_work, pass_activity_work                   scratch tables of one ingest batch
--   reengagement_actions                                  read by the PassKit sync (sends them)
--   reengagement_audience, reengagement_report            for the data team (PII allowed here)
--   passkit_coupon_redemptions, pass_points_reconciliation  views over pass_events
-- pass_activity (010_loyalty.sql) is filled by the webhook ingest: one row per member.

-- The webhook log, ingested -----------------------------------------------------------

-- One row per logical webhook event (event_key, see webhooks/events.py): the first delivery
-- seen wins, redeliveries are counted as duplicates and dropped. No personal details.
-- pass_kind: 'membership', 'coupon' or 'other' (another protocol). occurred_at comes from
-- the pass metadata when PassKit sent it (occurred_at_source 'metadata.<field>'), otherwise it
-- is the receive time ('received_at'). source_file / source_offset: the log line it came from.
CREATE TABLE IF NOT EXISTS pass_events (
    event_key            VARCHAR NOT NULL UNIQUE,
    delivery_id          VARCHAR NOT NULL,
    event_type           VARCHAR NOT NULL,
    pass_kind            VARCHAR NOT NULL,
    pass_id              VARCHAR,
    class_id             VARCHAR,
    member_external_id   VARCHAR,
    protocol             VARCHAR,
    status               VARCHAR,
    occurred_at          TIMESTAMPTZ NOT NULL,
    occurred_at_source   VARCHAR NOT NULL,
    first_installed_at   TIMESTAMPTZ,
    last_installed_at    TIMESTAMPTZ,
    last_uninstalled_at  TIMESTAMPTZ,
    invalidated_at       TIMESTAMPTZ,
    points               DECIMAL(12,2),
    tier_id              VARCHAR,
    coupon_id            VARCHAR,
    coupon_external_id   VARCHAR,
    coupon_campaign_id   VARCHAR,
    warnings             VARCHAR,
    received_at          TIMESTAMPTZ NOT NULL,
    source_file          VARCHAR NOT NULL,
    source_offset        BIGINT NOT NULL,
    ingested_at          TIMESTAMPTZ NOT NULL
);

-- Log lines that are not webhook deliveries (corrupt line, record without a body...): kept
-- by position for a person to look at in the log file; the content is not copied (PII).
CREATE TABLE IF NOT EXISTS pass_event_rejects (
    source_file    VARCHAR NOT NULL,
    source_offset  BIGINT NOT NULL,
    delivery_id    VARCHAR,
    field          VARCHAR NOT NULL,
    problem        VARCHAR NOT NULL,
    ingested_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_file, source_offset)
);

-- How far each events file of the log directory is ingested (a byte offset). Written in the
-- same transaction as the events read up to it.
CREATE TABLE IF NOT EXISTS webhook_watermarks (
    file_name    VARCHAR PRIMARY KEY,
    byte_offset  BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Scratch: the parsed lines of the batch being ingested (seq = position in the batch).
CREATE TABLE IF NOT EXISTS pass_event_work (
    seq                  INTEGER NOT NULL,
    event_key            VARCHAR NOT NULL,
    delivery_id          VARCHAR NOT NULL,
    event_type           VARCHAR NOT NULL,
    pass_kind            VARCHAR NOT NULL,
    pass_id              VARCHAR,
    class_id             VARCHAR,
    member_external_id   VARCHAR,
    protocol             VARCHAR,
    status               VARCHAR,
    occurred_at          TIMESTAMPTZ NOT NULL,
    occurred_at_source   VARCHAR NOT NULL,
    first_installed_at   TIMESTAMPTZ,
    last_installed_at    TIMESTAMPTZ,
    last_uninstalled_at  TIMESTAMPTZ,
    invalidated_at       TIMESTAMPTZ,
    points               DECIMAL(12,2),
    tier_id              VARCHAR,
    coupon_id            VARCHAR,
    coupon_external_id   VARCHAR,
    coupon_campaign_id   VARCHAR,
    warnings             VARCHAR,
    received_at          TIMESTAMPTZ NOT NULL,
    source_file          VARCHAR NOT NULL,
    source_offset        BIGINT NOT NULL
);

-- Scratch: the recomputed pass_activity rows of the members a batch touched.
CREATE TABLE IF NOT EXISTS pass_activity_work (
    member_external_id   VARCHAR NOT NULL,
    pass_id              VARCHAR,
    state                VARCHAR NOT NULL,
    first_installed_at   TIMESTAMPTZ,
    last_installed_at    TIMESTAMPTZ,
    last_uninstalled_at  TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ NOT NULL
);

-- Re-engagement ----------------------------------------------------------------------

-- What to do about each re-engagement (reengagements, one per member and absence), decided
-- once. arm: 'treated' or 'control' (stable hash of the member and absence). channel:
-- 'pass_message' (message shown on the pass, the wallet notifies), 'coupon' (a win-back
-- coupon of passkit_campaign_id / passkit_offer_id with coupon_external_id), 'audience'
-- (the pass cannot be notified: the guest is in reengagement_audience for e-mail/CRM) or
-- 'control' (nothing is sent). The PassKit sync sends 'pass_message' and 'coupon' rows once.
CREATE TABLE IF NOT EXISTS reengagement_actions (
    external_id          VARCHAR NOT NULL,
    absence_key          VARCHAR NOT NULL,
    reason               VARCHAR NOT NULL,
    arm                  VARCHAR NOT NULL,
    channel              VARCHAR NOT NULL,
    message              VARCHAR,
    coupon_external_id   VARCHAR,
    passkit_campaign_id  VARCHAR,
    passkit_offer_id     VARCHAR,
    due_on               DATE NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (external_id, absence_key, channel)
);

-- Treated guests whose pass cannot be notified (uninstalled, invalidated or revoked), with
-- their contact details as of planning, for the team's e-mail/CRM tool. planned_on: the
-- business date of the run that planned it (the CSV export of that date lists it).
CREATE TABLE IF NOT EXISTS reengagement_audience (
    external_id  VARCHAR NOT NULL,
    absence_key  VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    due_on       DATE NOT NULL,
    planned_on   DATE NOT NULL,
    email        VARCHAR,
    phone        VARCHAR,
    forename     VARCHAR,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (external_id, absence_key)
);

-- Return rates by arm, for absences due in [due_from, due_to] (windows already closed on
-- report_on): an absence returned when its member made a qualifying visit in
-- (due_on, due_on + return_window_days]. channel 'all' = the arm; treated rows per channel
-- follow. return_rate = returned / absences (NULL without absences). Rerun: replaced.
CREATE TABLE IF NOT EXISTS reengagement_report (
    report_on           DATE NOT NULL,
    due_from            DATE NOT NULL,
    due_to              DATE NOT NULL,
    return_window_days  INTEGER NOT NULL,
    arm                 VARCHAR NOT NULL,
    channel             VARCHAR NOT NULL,
    absences            INTEGER NOT NULL,
    returned            INTEGER NOT NULL,
    return_rate         DECIMAL(7,4),
    created_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report_on, arm, channel)
);

-- Views for the data team -------------------------------------------------------------

-- Coupon redemptions reported by PassKit webhooks, with the member and what the coupon was
-- (an item reward of pass_coupons or a win-back coupon of reengagement_actions).
CREATE OR REPLACE VIEW passkit_coupon_redemptions AS
SELECT e.event_key,
       e.coupon_external_id,
       e.coupon_id AS passkit_coupon_id,
       e.coupon_campaign_id AS passkit_campaign_id,
       COALESCE(pc.external_id, ra.external_id, e.member_external_id) AS external_id,
       CASE WHEN pc.coupon_external_id IS NOT NULL THEN 'reward'
            WHEN ra.coupon_external_id IS NOT NULL THEN 'winback' END AS coupon_kind,
       pc.reward_id,
       ra.absence_key,
       e.occurred_at AS redeemed_at,
       e.received_at
FROM pass_events e
LEFT JOIN pass_coupons pc ON pc.coupon_external_id = e.coupon_external_id
LEFT JOIN reengagement_actions ra
       ON ra.coupon_external_id = e.coupon_external_id AND ra.channel = 'coupon'
WHERE e.event_type = 'COUPON_EVENT_REDEEMED';

-- The latest points balance PassKit reported per member (webhook recordData) next to the
-- desired one (pass_states). A difference is a hint, not an error: staff may have burned
-- points that the sync has not read back yet (member events are the ledger's source).
CREATE OR REPLACE VIEW pass_points_reconciliation AS
WITH reported AS (
    SELECT member_external_id, points, tier_id, occurred_at,
           ROW_NUMBER() OVER (PARTITION BY member_external_id
                              ORDER BY occurred_at DESC, received_at DESC, event_key)
               AS recency
    FROM pass_events
    WHERE pass_kind = 'membership' AND points IS NOT NULL AND member_external_id IS NOT NULL
)
SELECT r.member_external_id AS external_id,
       r.points AS reported_points,
       r.tier_id AS reported_tier_id,
       r.occurred_at AS reported_at,
       ps.points AS desired_points,
       ps.tier_id AS desired_tier_id,
       ps.status AS desired_status,
       r.points - ps.points AS points_difference
FROM reported r
LEFT JOIN pass_states ps ON ps.external_id = r.member_external_id
WHERE r.recency = 1;
