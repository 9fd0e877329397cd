-- Loyalty engine tables: the program as tables, guests, the points ledger, pass states.
-- Runs unchanged on DuckDB and PostgreSQL. Groups:
--   loyalty_program_*   the validated program file, rewritten at the start of every run
--   loyalty_*           the engine's own state (checks, guests, members, the ledger)
--   loyalty_work_*      scratch tables of one run (emptied at its start and before it commits)
--   pass_*, passkit_*, reengagements, guest_spend   shared with the PassKit sync / webhooks
-- Only the ledger, pass_coupons, reengagements and passkit_redemptions carry unique keys and
-- are never rewritten wholesale (the ledger's derived entries excepted, see below); the other
-- tables are replaced by delete + insert within a run.

-- The program -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS loyalty_program_settings (
    passkit_program_id        VARCHAR NOT NULL,
    timezone                  VARCHAR NOT NULL,
    points_per_currency_unit  DECIMAL(12,4) NOT NULL,
    min_qualifying_visits     INTEGER NOT NULL,
    welcome_bonus_points      INTEGER NOT NULL,
    window_days               INTEGER NOT NULL,
    reengage_after_days       INTEGER,
    expire_points_after_days  INTEGER,
    revoke_pass_after_days    INTEGER,
    revoke_when_all_refunded  BOOLEAN NOT NULL,
    base_tier_id              VARCHAR NOT NULL,
    default_phone_region      VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS loyalty_program_tiers (
    tier_id    VARCHAR NOT NULL,
    tier_rank  INTEGER NOT NULL,
    min_spend  DECIMAL(12,2) NOT NULL
);

-- kind: 'menu_item' or 'sales_category'; name_key: the name trimmed and lower-cased.
CREATE TABLE IF NOT EXISTS loyalty_program_exclusions (
    kind      VARCHAR NOT NULL,
    name_key  VARCHAR NOT NULL
);

-- One row per (reward, menu item name trimmed and lower-cased).
CREATE TABLE IF NOT EXISTS loyalty_program_rewards (
    reward_id            VARCHAR NOT NULL,
    menu_item_key        VARCHAR NOT NULL,
    passkit_campaign_id  VARCHAR NOT NULL,
    passkit_offer_id     VARCHAR NOT NULL
);

-- Runs and processed partitions --------------------------------------------------------

CREATE TABLE IF NOT EXISTS loyalty_runs (
    run_id               VARCHAR NOT NULL,
    requested_as_of      DATE NOT NULL,
    as_of                DATE NOT NULL,
    mode                 VARCHAR NOT NULL,
    program_fingerprint  VARCHAR NOT NULL,
    partitions           INTEGER NOT NULL,
    checks               INTEGER NOT NULL,
    guests_recomputed    INTEGER NOT NULL,
    started_at           TIMESTAMPTZ NOT NULL,
    finished_at          TIMESTAMPTZ NOT NULL
);

-- The export partitions (location, business date) already folded into the loyalty tables,
-- with the load time they had: a partition staged again later is seen as changed.
CREATE TABLE IF NOT EXISTS loyalty_partitions (
    location_id    VARCHAR NOT NULL,
    business_date  DATE NOT NULL,
    loaded_at      TIMESTAMPTZ NOT NULL
);

-- Checks, refunds, identity -----------------------------------------------------------

-- One row per staged check: its eligible spend, identity and guest.
-- covered_by / covered_on: the member that first held the check's guest, and since when
-- (item-reward coupons of the check go to that member, issued on that day).
CREATE TABLE IF NOT EXISTS loyalty_checks (
    location_id     VARCHAR NOT NULL,
    check_id        VARCHAR NOT NULL,
    business_date   DATE NOT NULL,
    voided          BOOLEAN NOT NULL,
    eligible_spend  DECIMAL(12,2) NOT NULL,
    qualifying      BOOLEAN NOT NULL,
    email           VARCHAR,
    phone           VARCHAR,
    customer_id     VARCHAR,
    customer_name   VARCHAR,
    guest_id        VARCHAR,
    covered_by      VARCHAR,
    covered_on      DATE
);

-- Rewards a check earns: a non-voided line of one of the reward's menu items.
CREATE TABLE IF NOT EXISTS loyalty_check_rewards (
    location_id  VARCHAR NOT NULL,
    check_id     VARCHAR NOT NULL,
    reward_id    VARCHAR NOT NULL
);

-- One row per refunded Payment Id as of its latest export.
CREATE TABLE IF NOT EXISTS loyalty_refunds (
    location_id    VARCHAR NOT NULL,
    payment_id     VARCHAR NOT NULL,
    check_id       VARCHAR NOT NULL,
    refund_amount  DECIMAL(12,2) NOT NULL,
    refund_date    DATE NOT NULL,
    exported_on    DATE NOT NULL
);

-- Phones already parsed with the phonenumbers library (phone_e164 NULL: not a valid phone).
-- One row per (raw_phone, region): the identity pass parses only phones not yet in it.
CREATE TABLE IF NOT EXISTS loyalty_phone_numbers (
    raw_phone   VARCHAR NOT NULL,
    region      VARCHAR NOT NULL,
    phone_e164  VARCHAR
);

-- Each normalised identifier ('email|...', 'phone|+1...', 'customer|...') and its guest.
CREATE TABLE IF NOT EXISTS loyalty_identifiers (
    identifier  VARCHAR NOT NULL,
    guest_id    VARCHAR NOT NULL
);

-- One row per guest (checks joined over shared identifiers). guest_id is derived from the
-- guest's earliest check; carrier_external_id is the member that holds the guest's pass.
CREATE TABLE IF NOT EXISTS loyalty_guests (
    guest_id             VARCHAR NOT NULL,
    first_business_date  DATE NOT NULL,
    first_location_id    VARCHAR NOT NULL,
    first_check_id       VARCHAR NOT NULL,
    qualifying_checks    INTEGER NOT NULL,
    has_contact          BOOLEAN NOT NULL,
    first_visit_on       DATE,
    last_visit_on        DATE,
    carrier_external_id  VARCHAR,
    carrier_enrolled_on  DATE
);

-- Every member ever enrolled. external_id never changes; a member whose guest was joined to
-- an earlier-enrolled member's guest keeps its row with merged_into / merged_on set.
CREATE TABLE IF NOT EXISTS loyalty_members (
    external_id         VARCHAR NOT NULL,
    guest_id            VARCHAR NOT NULL,
    enrolled_on         DATE NOT NULL,
    anchor_location_id  VARCHAR NOT NULL,
    anchor_check_id     VARCHAR NOT NULL,
    merged_into         VARCHAR,
    merged_on           DATE
);

-- The points ledger ------------------------------------------------------------------

-- One entry per earning check ('earn'), refunded payment ('reversal'), member welcome bonus
-- ('bonus'), PassKit redemption ('redemption') and absence ('expiry'). points are signed
-- (earn and bonus positive). entry_key is the natural key: an entry is never duplicated.
--   Facts, insert-only: earn, bonus, redemption. Written once, never changed or removed.
--   Derived: reversal, expiry. They depend on the guest's whole history (later refund exports
--   of a payment, a merge that fills a gap in the visits or changes the carrying member), so
--   each run that recomputes a guest (every guest in a full run) recomputes them: an entry
--   the history no longer gives, or gives differently, is removed (and the corrected one
--   written); an unchanged entry is left as it is, run_id and created_at included.
-- So loading history day by day and loading it all at once give identical ledgers, and
-- rerunning any day changes nothing.
CREATE TABLE IF NOT EXISTS loyalty_ledger (
    entry_key         VARCHAR PRIMARY KEY,
    kind              VARCHAR NOT NULL,
    entry_date        DATE NOT NULL,
    points            DECIMAL(12,2) NOT NULL,
    location_id       VARCHAR,
    check_id          VARCHAR,
    payment_id        VARCHAR,
    external_id       VARCHAR,
    passkit_event_id  VARCHAR,
    run_id            VARCHAR NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL
);

-- Shared with the PassKit sync and the webhook receiver --------------------------------

-- Per-guest spend as of the latest run (spend net of refunds; visits = qualifying checks).
CREATE TABLE IF NOT EXISTS guest_spend (
    guest_id             VARCHAR NOT NULL,
    external_id          VARCHAR,
    checks               INTEGER NOT NULL,
    visits               INTEGER NOT NULL,
    first_visit_on       DATE,
    last_visit_on        DATE,
    lifetime_spend       DECIMAL(12,2) NOT NULL,
    lifetime_refunded    DECIMAL(12,2) NOT NULL,
    lifetime_net_spend   DECIMAL(12,2) NOT NULL,
    window_net_spend     DECIMAL(12,2) NOT NULL,
    tier_id              VARCHAR NOT NULL,
    points               DECIMAL(12,2) NOT NULL,
    as_of                DATE NOT NULL
);

-- Desired pass of each enrolled member. as_of: the business date this row was computed
-- for (rows of members nothing happened to keep theirs). A revoked member's tier and points
-- are those of revoked_on (or of the day before its merge), never updated until reinstated.
CREATE TABLE IF NOT EXISTS pass_states (
    external_id     VARCHAR NOT NULL,
    guest_id        VARCHAR NOT NULL,
    forename        VARCHAR,
    surname         VARCHAR,
    email           VARCHAR,
    phone           VARCHAR,
    tier_id         VARCHAR NOT NULL,
    points          INTEGER NOT NULL,
    status          VARCHAR NOT NULL,
    revoked_reason  VARCHAR,
    revoked_on      DATE,
    enrolled_on     DATE NOT NULL,
    as_of           DATE NOT NULL
);

-- One single-use coupon per (reward, check); coupon_external_id is derived from both.
CREATE TABLE IF NOT EXISTS pass_coupons (
    coupon_external_id   VARCHAR PRIMARY KEY,
    external_id          VARCHAR NOT NULL,
    reward_id            VARCHAR NOT NULL,
    location_id          VARCHAR NOT NULL,
    check_id             VARCHAR NOT NULL,
    passkit_campaign_id  VARCHAR NOT NULL,
    passkit_offer_id     VARCHAR NOT NULL,
    issued_on            DATE NOT NULL,
    run_id               VARCHAR NOT NULL
);

-- Filled by the PassKit sync from member events (POINTS_BURNED); read into the ledger.
CREATE TABLE IF NOT EXISTS passkit_redemptions (
    passkit_event_id    VARCHAR NOT NULL UNIQUE,
    member_external_id  VARCHAR NOT NULL,
    points              DECIMAL(12,2) NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL
);

-- Filled by the webhook receiver: the latest known install state of each pass.
CREATE TABLE IF NOT EXISTS pass_activity (
    member_external_id   VARCHAR NOT NULL,
    pass_id              VARCHAR,
    state                VARCHAR NOT NULL,
    first_installed_at   TIMESTAMPTZ,
    last_installed_at    TIMESTAMPTZ,
    last_uninstalled_at  TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ NOT NULL
);

-- One re-engagement per member and absence; reason 'lapsed' or 'uninstalled'.
CREATE TABLE IF NOT EXISTS reengagements (
    external_id  VARCHAR NOT NULL,
    absence_key  VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    due_on       DATE NOT NULL,
    run_id       VARCHAR NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (external_id, absence_key)
);

-- Scratch tables of one run ----------------------------------------------------------

CREATE TABLE IF NOT EXISTS loyalty_work_partitions (
    location_id    VARCHAR NOT NULL,
    business_date  DATE NOT NULL,
    loaded_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS loyalty_work_checks (
    location_id     VARCHAR NOT NULL,
    check_id        VARCHAR NOT NULL,
    business_date   DATE NOT NULL,
    voided          BOOLEAN NOT NULL,
    eligible_spend  DECIMAL(12,2) NOT NULL,
    qualifying      BOOLEAN NOT NULL,
    email           VARCHAR,
    raw_phone       VARCHAR,
    customer_id     VARCHAR,
    customer_name   VARCHAR
);

-- Existing checks of the guests a run rewrites or replays whole for a merge
-- (030_apply_identity.sql): rows of loyalty_checks, so the table takes its columns, and
-- whether the run rewrites them.
CREATE TABLE IF NOT EXISTS loyalty_work_history AS
SELECT *, CAST(NULL AS BOOLEAN) AS rewritten FROM loyalty_checks WHERE 1 = 0;

-- Written by the identity pass (Python): per new check its guest and covering member.
CREATE TABLE IF NOT EXISTS loyalty_work_identities (
    location_id  VARCHAR NOT NULL,
    check_id     VARCHAR NOT NULL,
    guest_id     VARCHAR,
    covered_by   VARCHAR,
    covered_on   DATE
);

CREATE TABLE IF NOT EXISTS loyalty_work_identifiers (
    identifier  VARCHAR NOT NULL,
    guest_id    VARCHAR
);

CREATE TABLE IF NOT EXISTS loyalty_work_guest_remap (
    old_guest_id  VARCHAR NOT NULL,
    new_guest_id  VARCHAR NOT NULL
);

-- Checks of an existing guest that get a member: guest_id is the guest's id before remap.
CREATE TABLE IF NOT EXISTS loyalty_work_covers (
    guest_id     VARCHAR NOT NULL,
    external_id  VARCHAR NOT NULL,
    covered_on   DATE NOT NULL
);

CREATE TABLE IF NOT EXISTS loyalty_work_guest_rows (
    guest_id             VARCHAR NOT NULL,
    first_business_date  DATE NOT NULL,
    first_location_id    VARCHAR NOT NULL,
    first_check_id       VARCHAR NOT NULL,
    qualifying_checks    INTEGER NOT NULL,
    has_contact          BOOLEAN NOT NULL,
    first_visit_on       DATE,
    last_visit_on        DATE,
    carrier_external_id  VARCHAR,
    carrier_enrolled_on  DATE
);

CREATE TABLE IF NOT EXISTS loyalty_work_member_rows (
    external_id         VARCHAR NOT NULL,
    guest_id            VARCHAR NOT NULL,
    enrolled_on         DATE NOT NULL,
    anchor_location_id  VARCHAR NOT NULL,
    anchor_check_id     VARCHAR NOT NULL,
    merged_into         VARCHAR,
    merged_on           DATE
);

-- Members of earlier runs merged in this run into an earlier-enrolled member.
CREATE TABLE IF NOT EXISTS loyalty_work_member_merges (
    external_id  VARCHAR NOT NULL,
    merged_into  VARCHAR NOT NULL,
    merged_on    DATE NOT NULL
);

-- previous_*: the Payment Id's refund as folded in before this run (none: a new refund).
CREATE TABLE IF NOT EXISTS loyalty_work_refunds (
    location_id           VARCHAR NOT NULL,
    payment_id            VARCHAR NOT NULL,
    previous_check_id     VARCHAR,
    previous_refund_date  DATE
);

-- The derived ledger entries (reversal, expiry) the recomputed guests' histories give.
CREATE TABLE IF NOT EXISTS loyalty_work_derived_entries (
    entry_key    VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,
    entry_date   DATE NOT NULL,
    points       DECIMAL(12,2) NOT NULL,
    location_id  VARCHAR NOT NULL,
    check_id     VARCHAR NOT NULL,
    payment_id   VARCHAR,
    external_id  VARCHAR
);

-- changed_on: the earliest business date of the guest's new facts (checks, refunds,
-- redemptions) folded in by this run; NULL when only the passing of time moves its state.
CREATE TABLE IF NOT EXISTS loyalty_work_guests (
    guest_id    VARCHAR NOT NULL,
    changed_on  DATE
);

-- An owner is whose balance and tier are computed: a guest as of the run's day ('guest'),
-- or a member joined into another member's guest, as of the day before the merge ('merged').
-- checkpoint_on: the guest is replayed from its checkpoint of that day (loyalty_guest_
-- checkpoints) rather than from its first check; NULL: from its first check.
CREATE TABLE IF NOT EXISTS loyalty_work_owners (
    owner_id       VARCHAR NOT NULL,
    owner_kind     VARCHAR NOT NULL,
    guest_id       VARCHAR NOT NULL,
    external_id    VARCHAR,
    enrolled_on    DATE,
    eval_on        DATE NOT NULL,
    checkpoint_on  DATE
);

-- Each owner's checks with the facts the models read, taken from loyalty_checks once a run.
-- replayed: the check is part of the history the run replays (all of them, or those after
-- the owner's checkpoint); FALSE: an older check read only for its refunds since the
-- checkpoint or for leaving the tier window.
CREATE TABLE IF NOT EXISTS loyalty_work_owner_checks (
    owner_id        VARCHAR NOT NULL,
    location_id     VARCHAR NOT NULL,
    check_id        VARCHAR NOT NULL,
    business_date   DATE,
    qualifying      BOOLEAN,
    eligible_spend  DECIMAL(12,2),
    customer_name   VARCHAR,
    email           VARCHAR,
    phone           VARCHAR,
    replayed        BOOLEAN,
    covered_by      VARCHAR
);

-- Members whose redemptions (and, for the bonus member, welcome bonus) an owner counts.
CREATE TABLE IF NOT EXISTS loyalty_work_owner_members (
    owner_id     VARCHAR NOT NULL,
    external_id  VARCHAR NOT NULL,
    is_bonus     BOOLEAN NOT NULL
);

-- Each qualifying-visit date of an owner and when the absence after it reaches a threshold.
CREATE TABLE IF NOT EXISTS loyalty_work_absences (
    owner_id           VARCHAR NOT NULL,
    visit_on           DATE NOT NULL,
    last_location_id   VARCHAR NOT NULL,
    last_check_id      VARCHAR NOT NULL,
    next_visit_on      DATE,
    expires_on         DATE,
    revokes_on         DATE,
    reengages_on       DATE
);

-- Every ledger step of an owner up to eval_on with the balance after it (0 after an expiry).
CREATE TABLE IF NOT EXISTS loyalty_work_balances (
    owner_id        VARCHAR NOT NULL,
    entry_key       VARCHAR NOT NULL,
    entry_date      DATE NOT NULL,
    step            INTEGER NOT NULL,
    points          DECIMAL(12,2) NOT NULL,
    balance_before  DECIMAL(12,2) NOT NULL,
    balance_after   DECIMAL(12,2) NOT NULL,
    is_expiry       BOOLEAN NOT NULL
);

-- One row per owner: status as of eval_on, the date its pass state is taken at (state_on),
-- tier and balance on that date.
CREATE TABLE IF NOT EXISTS loyalty_work_owner_states (
    owner_id         VARCHAR NOT NULL,
    last_visit_on    DATE,
    revoked_reason   VARCHAR,
    revoked_on       DATE,
    state_on         DATE NOT NULL,
    window_spend     DECIMAL(12,2) NOT NULL,
    tier_id          VARCHAR NOT NULL,
    balance          DECIMAL(12,2) NOT NULL,
    qualifying_checks  INTEGER,
    refunded_checks    INTEGER
);
