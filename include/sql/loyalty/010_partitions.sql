-- Export partitions to fold in: staged up to the run's day (stg_loads) and not yet folded in
-- with their latest load. A partition staged again (a reload) shows a newer loaded_at.
DELETE FROM loyalty_work_partitions;
INSERT INTO loyalty_work_partitions (location_id, business_date, loaded_at)
SELECT staged.location_id, staged.business_date, staged.loaded_at
FROM (
    SELECT location_id, business_date, MAX(loaded_at) AS loaded_at
    FROM stg_loads
    WHERE business_date <= CAST(:as_of AS DATE)
    GROUP BY location_id, business_date
) staged
WHERE NOT EXISTS (
    SELECT 1 FROM loyalty_partitions done
    WHERE done.location_id = staged.location_id
      AND done.business_date = staged.business_date
      AND done.loaded_at = staged.loaded_at
);
