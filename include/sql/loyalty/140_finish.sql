-- Remember the partitions folded in, with the load they were folded in with.
DELETE FROM loyalty_partitions
WHERE EXISTS (SELECT 1 FROM loyalty_work_partitions w
              WHERE w.location_id = loyalty_partitions.location_id
                AND w.business_date = loyalty_partitions.business_date);

INSERT INTO loyalty_partitions (location_id, business_date, loaded_at)
SELECT location_id, business_date, loaded_at FROM loyalty_work_partitions;
