-- Raw archive manifest and Toast staging tables. Runs unchanged on DuckDB and PostgreSQL.
-- Every staged row carries its lineage: the export partition (location_id, business_date),
-- the archived file it came from (source_file, source_checksum, source_row) and the load_id.

CREATE TABLE IF NOT EXISTS raw_files (
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    file_name        VARCHAR NOT NULL,
    checksum_sha256  VARCHAR NOT NULL,
    size_bytes       BIGINT NOT NULL,
    archive_path     VARCHAR NOT NULL,
    source_uri       VARCHAR NOT NULL,
    archived_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_loads (
    load_id          VARCHAR NOT NULL,
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    table_name       VARCHAR NOT NULL,
    source_file      VARCHAR NOT NULL,
    source_checksum  VARCHAR NOT NULL,
    rows_read        INTEGER NOT NULL,
    rows_loaded      INTEGER NOT NULL,
    rows_rejected    INTEGER NOT NULL,
    unmapped_columns VARCHAR NOT NULL,
    loaded_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_rejected_rows (
    load_id          VARCHAR NOT NULL,
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    table_name       VARCHAR NOT NULL,
    source_file      VARCHAR NOT NULL,
    source_row       INTEGER NOT NULL,
    field            VARCHAR NOT NULL,
    value            VARCHAR,
    reason           VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_validation_results (
    load_id          VARCHAR NOT NULL,
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    table_name       VARCHAR NOT NULL,
    suite_name       VARCHAR NOT NULL,
    success          BOOLEAN NOT NULL,
    evaluated        INTEGER NOT NULL,
    failed           INTEGER NOT NULL,
    result_json      VARCHAR NOT NULL,
    validated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_orders (
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    order_id         VARCHAR NOT NULL,
    order_number     VARCHAR,
    location_name    VARCHAR,
    opened_local     TIMESTAMP,
    paid_local       TIMESTAMP,
    closed_local     TIMESTAMP,
    guest_count      INTEGER,
    revenue_center   VARCHAR,
    dining_option    VARCHAR,
    order_source     VARCHAR,
    discount_amount  DECIMAL(12,2),
    amount           DECIMAL(12,2),
    tax              DECIMAL(12,2),
    tip              DECIMAL(12,2),
    gratuity         DECIMAL(12,2),
    total            DECIMAL(12,2),
    voided           BOOLEAN NOT NULL,
    source_file      VARCHAR NOT NULL,
    source_checksum  VARCHAR NOT NULL,
    source_row       INTEGER NOT NULL,
    load_id          VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_checks (
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    check_id         VARCHAR NOT NULL,
    check_number     VARCHAR,
    location_name    VARCHAR,
    opened_date      DATE,
    opened_time      VARCHAR,
    tax              DECIMAL(12,2),
    total            DECIMAL(12,2),
    discount         DECIMAL(12,2),
    customer_id      VARCHAR,
    customer_name    VARCHAR,
    customer_phone   VARCHAR,
    customer_email   VARCHAR,
    source_file      VARCHAR NOT NULL,
    source_checksum  VARCHAR NOT NULL,
    source_row       INTEGER NOT NULL,
    load_id          VARCHAR NOT NULL
);

-- One row per (export partition, Payment Id): a Payment Id re-exported on a later day (a late
-- refund) is kept per export; stg_payments_latest picks the latest export of each Payment Id.
CREATE TABLE IF NOT EXISTS stg_payments (
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    payment_id       VARCHAR NOT NULL,
    order_id         VARCHAR,
    check_id         VARCHAR NOT NULL,
    paid_local       TIMESTAMP,
    order_local      TIMESTAMP,
    payment_type     VARCHAR,
    card_type        VARCHAR,
    status           VARCHAR,
    amount           DECIMAL(12,2),
    tip              DECIMAL(12,2),
    gratuity         DECIMAL(12,2),
    total            DECIMAL(12,2),
    refunded         VARCHAR,
    refund_local     TIMESTAMP,
    refund_amount    DECIMAL(12,2),
    refund_tip_amount DECIMAL(12,2),
    email            VARCHAR,
    phone            VARCHAR,
    source_file      VARCHAR NOT NULL,
    source_checksum  VARCHAR NOT NULL,
    source_row       INTEGER NOT NULL,
    load_id          VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_item_lines (
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    item_selection_id VARCHAR NOT NULL,
    order_id         VARCHAR,
    check_id         VARCHAR NOT NULL,
    item_id          VARCHAR,
    master_id        VARCHAR,
    menu_item        VARCHAR,
    menu_group       VARCHAR,
    menu             VARCHAR,
    sales_category   VARCHAR,
    gross_price      DECIMAL(12,2),
    discount         DECIMAL(12,2),
    net_price        DECIMAL(12,2) NOT NULL,
    qty              DECIMAL(12,4),
    tax              DECIMAL(18,8),
    voided           BOOLEAN NOT NULL,
    deferred         BOOLEAN NOT NULL,
    sent_local       TIMESTAMP,
    order_local      TIMESTAMP,
    source_file      VARCHAR NOT NULL,
    source_checksum  VARCHAR NOT NULL,
    source_row       INTEGER NOT NULL,
    load_id          VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS stg_modifier_lines (
    location_id      VARCHAR NOT NULL,
    business_date    DATE NOT NULL,
    item_selection_id VARCHAR NOT NULL,
    order_id         VARCHAR,
    check_id         VARCHAR NOT NULL,
    modifier_id      VARCHAR,
    modifier         VARCHAR,
    option_group_name VARCHAR,
    parent_item_id   VARCHAR,
    sales_category   VARCHAR,
    gross_price      DECIMAL(12,2),
    discount         DECIMAL(12,2),
    net_price        DECIMAL(12,2),
    qty              DECIMAL(12,4),
    voided           BOOLEAN,
    order_local      TIMESTAMP,
    source_file      VARCHAR NOT NULL,
    source_checksum  VARCHAR NOT NULL,
    source_row       INTEGER NOT NULL,
    load_id          VARCHAR NOT NULL
);

-- Latest export wins: each Payment Id as of its most recent export.
CREATE OR REPLACE VIEW stg_payments_latest AS
SELECT * FROM (
    SELECT p.*,
           ROW_NUMBER() OVER (
               PARTITION BY p.location_id, p.payment_id
               ORDER BY p.business_date DESC, p.source_row DESC
           ) AS export_rank
    FROM stg_payments p
) ranked
WHERE export_rank = 1;
