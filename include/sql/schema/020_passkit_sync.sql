-- PassKit sync state: what PassKit holds for each member and coupon, the operation in
-- progress, a per-call log for the data team, the runs, and the lease that keeps two syncs
-- from sending at once. Runs unchanged on DuckDB and PostgreSQL.
--
-- sync_state of a member or coupon:
--   synced     PassKit holds the applied_* fields (coupons: the coupon exists); nothing to do
--   pending    planned but not sent yet (a run stopped before reaching it): next run sends it
--   sent       handed to PassKit, the answer not recorded yet; a run that finds one left by a
--              crash reads PassKit (member, member events, coupon) before sending anything
--   uncertain  PassKit's answer was lost (timeout, dropped connection, 5xx) on a call that is
--              not safe to repeat: reconciled by reading PassKit once next_attempt_at is reached
--   failed     certainly not applied; sent again from next_attempt_at (exponential back-off)
--   given_up   failed max_attempts times; last_error says why. Sent again when its desired
--              state changes, or after `requeue_given_up` (sync.py)
-- Person data is never copied here: applied_person_hash is the MD5 of what was sent.

CREATE TABLE IF NOT EXISTS passkit_sync_members (
    external_id          VARCHAR PRIMARY KEY,
    passkit_member_id    VARCHAR,
    -- The last state successfully applied in PassKit (status NULL: not in PassKit).
    applied_status       VARCHAR,
    applied_revoke_mode  VARCHAR,
    applied_tier_id      VARCHAR,
    applied_points       DECIMAL(12,2),
    applied_person_hash  VARCHAR,
    applied_message      VARCHAR,
    applied_hash         VARCHAR,
    applied_at           TIMESTAMPTZ,
    points_sequence      INTEGER NOT NULL,
    -- The operation in progress: the calls planned, the desired state they push and, for a
    -- points change, its externalEventId and the balances it moves between.
    sync_state           VARCHAR NOT NULL,
    op_calls             VARCHAR,
    op_desired_hash      VARCHAR,
    op_event_id          VARCHAR,
    op_from_points       DECIMAL(12,2),
    op_to_points         DECIMAL(12,2),
    op_tier_id           VARCHAR,
    attempts             INTEGER NOT NULL,
    next_attempt_at      TIMESTAMPTZ,
    last_status_code     INTEGER,
    last_error           VARCHAR,
    last_run_id          VARCHAR,
    updated_at           TIMESTAMPTZ NOT NULL
);

-- One row per coupon to issue: item rewards (pass_coupons) and win-back coupons
-- (reengagement_actions). source: 'reward' or 'winback'.
CREATE TABLE IF NOT EXISTS passkit_sync_coupons (
    coupon_external_id   VARCHAR PRIMARY KEY,
    external_id          VARCHAR NOT NULL,
    source               VARCHAR NOT NULL,
    passkit_campaign_id  VARCHAR NOT NULL,
    passkit_offer_id     VARCHAR NOT NULL,
    passkit_coupon_id    VARCHAR,
    sync_state           VARCHAR NOT NULL,
    attempts             INTEGER NOT NULL,
    next_attempt_at      TIMESTAMPTZ,
    last_status_code     INTEGER,
    last_error           VARCHAR,
    issued_at            TIMESTAMPTZ,
    last_run_id          VARCHAR,
    updated_at           TIMESTAMPTZ NOT NULL
);

-- Append-only, one row per PassKit call and per finding (reconciliation, read-back).
-- operation: enrol, earn, burn, tier, update, expire, reactivate, delete, issue_coupon,
--   reconcile (what a call with an unknown outcome did),
--   lookup (get by externalId), events (member events), redemption, drift.
--   member / coupon (with outcome given_up: the record was parked).
-- outcome: ok, failed, uncertain, given_up, applied, not_applied, adopted, absent,
--   duplicate, recorded, corrected.
-- request: a JSON summary without personal data (points, tier, externalEventId, field names).
CREATE TABLE IF NOT EXISTS passkit_sync_log (
    run_id              VARCHAR NOT NULL,
    logged_at           TIMESTAMPTZ NOT NULL,
    external_id         VARCHAR NOT NULL,
    coupon_external_id  VARCHAR,
    operation           VARCHAR NOT NULL,
    request             VARCHAR,
    outcome             VARCHAR NOT NULL,
    status_code         INTEGER,
    error               VARCHAR,
    attempt             INTEGER NOT NULL,
    elapsed_ms          INTEGER
);

-- One row per sync run. kind: 'apply', 'readback', 'dry_run', or 'plan' (the plan step of a
-- DAG run; no call). outcome: running, ok, aborted (circuit breaker), guard (revocation
-- guard), failed. summary: JSON counts.
CREATE TABLE IF NOT EXISTS passkit_sync_runs (
    run_id         VARCHAR PRIMARY KEY,
    kind           VARCHAR NOT NULL,
    business_date  DATE,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    outcome        VARCHAR NOT NULL,
    summary        VARCHAR
);

-- Held by the run that may call PassKit, renewed while it works; a crashed holder's lease
-- expires. Two runs sending the same points change would credit it twice.
CREATE TABLE IF NOT EXISTS passkit_sync_lease (
    lease_name  VARCHAR PRIMARY KEY,
    holder      VARCHAR NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- Scratch tables of one plan / one write ---------------------------------------------

-- The latest treated re-engagement message due for each member.
CREATE TABLE IF NOT EXISTS passkit_sync_work_messages (
    external_id  VARCHAR NOT NULL,
    message      VARCHAR NOT NULL
);

-- Every coupon that must exist in PassKit.
CREATE TABLE IF NOT EXISTS passkit_sync_work_coupons (
    coupon_external_id   VARCHAR NOT NULL,
    external_id          VARCHAR NOT NULL,
    source               VARCHAR NOT NULL,
    passkit_campaign_id  VARCHAR NOT NULL,
    passkit_offer_id     VARCHAR NOT NULL
);

-- The desired pass of each member: pass_states, less the redemptions read back from PassKit
-- that the ledger has not counted yet, plus the re-engagement message.
CREATE TABLE IF NOT EXISTS passkit_sync_work_desired (
    external_id        VARCHAR NOT NULL,
    status             VARCHAR NOT NULL,
    revoke_mode        VARCHAR NOT NULL,
    revoked_on         DATE,
    tier_id            VARCHAR NOT NULL,
    points             DECIMAL(12,2) NOT NULL,
    ledger_points      INTEGER NOT NULL,
    unledgered_points  DECIMAL(12,2) NOT NULL,
    person_hash        VARCHAR NOT NULL,
    message            VARCHAR,
    desired_hash       VARCHAR NOT NULL
);

-- Rows being written to passkit_sync_members / passkit_sync_coupons / passkit_redemptions.
CREATE TABLE IF NOT EXISTS passkit_sync_work_member_rows (
    external_id          VARCHAR NOT NULL,
    passkit_member_id    VARCHAR,
    applied_status       VARCHAR,
    applied_revoke_mode  VARCHAR,
    applied_tier_id      VARCHAR,
    applied_points       DECIMAL(12,2),
    applied_person_hash  VARCHAR,
    applied_message      VARCHAR,
    applied_at           TIMESTAMPTZ,
    points_sequence      INTEGER NOT NULL,
    sync_state           VARCHAR NOT NULL,
    op_calls             VARCHAR,
    op_desired_hash      VARCHAR,
    op_event_id          VARCHAR,
    op_from_points       DECIMAL(12,2),
    op_to_points         DECIMAL(12,2),
    op_tier_id           VARCHAR,
    attempts             INTEGER NOT NULL,
    next_attempt_at      TIMESTAMPTZ,
    last_status_code     INTEGER,
    last_error           VARCHAR,
    last_run_id          VARCHAR,
    updated_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS passkit_sync_work_coupon_rows (
    coupon_external_id   VARCHAR NOT NULL,
    external_id          VARCHAR NOT NULL,
    source               VARCHAR NOT NULL,
    passkit_campaign_id  VARCHAR NOT NULL,
    passkit_offer_id     VARCHAR NOT NULL,
    passkit_coupon_id    VARCHAR,
    sync_state           VARCHAR NOT NULL,
    attempts             INTEGER NOT NULL,
    next_attempt_at      TIMESTAMPTZ,
    last_status_code     INTEGER,
    last_error           VARCHAR,
    issued_at            TIMESTAMPTZ,
    last_run_id          VARCHAR,
    updated_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS passkit_sync_work_redemptions (
    passkit_event_id    VARCHAR NOT NULL,
    member_external_id  VARCHAR NOT NULL,
    points              DECIMAL(12,2) NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL
);
