-- Per-guest checkpoints: a guest's loyalty state as of the last run that recomputed it, so a
-- later incremental run replays only what happened to the guest after that day (see
-- 060_owners.sql). Only guests whose state was active then have one (a revoked guest is
-- recomputed from its first check). Derived: a full recomputation rewrites them all.
--   balance            after every ledger entry up to checkpoint_on (expiries included)
--   last_visit_*       the last qualifying visit day and its last check (the open absence)
--   window_spend       net spend over (checkpoint_on - window_days, checkpoint_on]
--   qualifying_checks / refunded_checks  qualifying checks, and those fully refunded
--   checks .. lifetime_net_spend         as in guest_spend
--   customer_name, email, phone          the latest ones of the guest's checks
CREATE TABLE IF NOT EXISTS loyalty_guest_checkpoints (
    guest_id            VARCHAR NOT NULL,
    checkpoint_on       DATE NOT NULL,
    external_id         VARCHAR,
    enrolled_on         DATE,
    balance             DECIMAL(12,2) NOT NULL,
    last_visit_on       DATE,
    last_location_id    VARCHAR,
    last_check_id       VARCHAR,
    window_spend        DECIMAL(12,2) NOT NULL,
    qualifying_checks   INTEGER NOT NULL,
    refunded_checks     INTEGER NOT NULL,
    checks              INTEGER NOT NULL,
    first_visit_on      DATE,
    lifetime_spend      DECIMAL(12,2) NOT NULL,
    lifetime_refunded   DECIMAL(12,2) NOT NULL,
    lifetime_net_spend  DECIMAL(12,2) NOT NULL,
    customer_name       VARCHAR,
    email               VARCHAR,
    phone               VARCHAR
);

-- The checkpoints of the guests a run replays from one (scratch: read by several models).
CREATE TABLE IF NOT EXISTS loyalty_work_checkpoints AS
SELECT * FROM loyalty_guest_checkpoints WHERE 1 = 0;

-- The checks of the refunds a run looks at, with their guests (scratch): new or changed
-- refunds (changed_on: the refund's date before or after the change) and refunds dated
-- since the previous run's day (dated_in_run).
CREATE TABLE IF NOT EXISTS loyalty_work_refunded_checks (
    location_id     VARCHAR NOT NULL,
    check_id        VARCHAR NOT NULL,
    guest_id        VARCHAR,
    business_date   DATE NOT NULL,
    qualifying      BOOLEAN NOT NULL,
    eligible_spend  DECIMAL(12,2) NOT NULL,
    changed_on      DATE,
    dated_in_run    BOOLEAN NOT NULL
);

-- The earn entries of the checks a run replays from their first check and of the refunded
-- checks it looks at (scratch: 065 reads them from the ledger once, for 065 and 080).
CREATE TABLE IF NOT EXISTS loyalty_work_earn_entries (
    location_id  VARCHAR NOT NULL,
    check_id     VARCHAR NOT NULL,
    entry_date   DATE NOT NULL,
    points       DECIMAL(12,2) NOT NULL
);

-- Members joined into another one whose pass is not yet frozen by the merge (no 'merged'
-- pass state), as they are after the run's identity pass (scratch: 050 finds them once, for
-- 050 and 060).
CREATE TABLE IF NOT EXISTS loyalty_work_unfrozen_members (
    external_id  VARCHAR NOT NULL,
    guest_id     VARCHAR NOT NULL,
    enrolled_on  DATE NOT NULL,
    merged_on    DATE NOT NULL
);

-- The bonus and redemption entries of the owners' members that a run replays (scratch: 080
-- reads them from the ledger by member before replaying the owners' ledgers).
CREATE TABLE IF NOT EXISTS loyalty_work_member_entries (
    owner_id    VARCHAR NOT NULL,
    entry_key   VARCHAR NOT NULL,
    entry_date  DATE NOT NULL,
    step        INTEGER NOT NULL,
    points      DECIMAL(12,2) NOT NULL
);

-- The guest_spend rows of the guests a run recomputes (scratch: 100 writes them, 115 reads
-- them back for the checkpoints): guest_spend's columns.
CREATE TABLE IF NOT EXISTS loyalty_work_guest_spend AS SELECT * FROM guest_spend WHERE FALSE;

-- The latest contact of each owner a run computes (scratch).
CREATE TABLE IF NOT EXISTS loyalty_work_owner_contacts (
    owner_id       VARCHAR NOT NULL,
    customer_name  VARCHAR,
    email          VARCHAR,
    phone          VARCHAR
);

-- Scratch columns of warehouses created before the checkpoints (010_loyalty.sql creates the
-- tables with them).
ALTER TABLE loyalty_work_refunds ADD COLUMN IF NOT EXISTS previous_check_id VARCHAR;
ALTER TABLE loyalty_work_refunds ADD COLUMN IF NOT EXISTS previous_refund_date DATE;
ALTER TABLE loyalty_work_guests ADD COLUMN IF NOT EXISTS changed_on DATE;
ALTER TABLE loyalty_work_owners ADD COLUMN IF NOT EXISTS checkpoint_on DATE;
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS replayed BOOLEAN;
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS covered_by VARCHAR;
ALTER TABLE loyalty_work_owner_states ADD COLUMN IF NOT EXISTS qualifying_checks INTEGER;
ALTER TABLE loyalty_work_owner_states ADD COLUMN IF NOT EXISTS refunded_checks INTEGER;

-- A hash of the pass payload, never read: the PassKit sync hashes what it sends itself
-- (passkit/040_desired_members.sql). Rewriting an incompressible string per changed pass made
-- every run's checkpoint dearer.
ALTER TABLE pass_states DROP COLUMN IF EXISTS state_hash;

-- Replaced by loyalty_work_history (010_loyalty.sql).
DROP TABLE IF EXISTS loyalty_work_check_updates;
