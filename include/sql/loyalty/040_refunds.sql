-- Refunds of the payments staged in the partitions folded in: per Payment Id its latest
-- export up to the run's day wins (a refund made days later arrives in a later export of the
-- same Payment Id), dated on Refund Date or, when empty, on that export's date.
-- The refund each one had before this run is kept with it (previous_*): a refund whose date
-- or amount changes changes the guest's history from the earlier of both dates on.
INSERT INTO loyalty_work_refunds (location_id, payment_id, previous_check_id,
                                  previous_refund_date)
SELECT staged.location_id, staged.payment_id, old.check_id, old.refund_date
FROM (
    SELECT DISTINCT p.location_id, p.payment_id
    FROM stg_payments p
    JOIN loyalty_work_partitions w
      ON w.location_id = p.location_id AND w.business_date = p.business_date
    WHERE p.business_date BETWEEN CAST(:work_from AS DATE) AND CAST(:work_to AS DATE)
) staged
LEFT JOIN loyalty_refunds old
  ON old.location_id = staged.location_id AND old.payment_id = staged.payment_id;

DELETE FROM loyalty_refunds
WHERE EXISTS (SELECT 1 FROM loyalty_work_refunds r
              WHERE r.location_id = loyalty_refunds.location_id
                AND r.payment_id = loyalty_refunds.payment_id);

INSERT INTO loyalty_refunds (location_id, payment_id, check_id, refund_amount, refund_date,
                             exported_on)
SELECT location_id, payment_id, check_id, refund_amount,
       COALESCE(CAST(refund_local AS DATE), business_date), business_date
FROM (
    SELECT p.location_id, p.payment_id, p.check_id, p.refund_amount, p.refund_local,
           p.business_date,
           ROW_NUMBER() OVER (PARTITION BY p.location_id, p.payment_id
                              ORDER BY p.business_date DESC, p.source_row DESC) AS export_rank
    FROM stg_payments p
    JOIN loyalty_work_refunds r
      ON r.location_id = p.location_id AND r.payment_id = p.payment_id
    -- The latest export of a Payment Id folded in is in the partitions folded in: an
    -- incremental run folds only partitions after the previous run's day.
    WHERE p.business_date >= CAST(:work_from AS DATE)
      AND p.business_date <= CAST(:as_of AS DATE)
) latest
WHERE export_rank = 1 AND refund_amount > 0;
