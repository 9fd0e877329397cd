-- Warehouses created before loyalty_work_owner_checks carried the check facts the models read
-- (010_loyalty.sql creates it with them): add the columns. A scratch table: nothing to fill.
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS business_date DATE;
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS qualifying BOOLEAN;
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS eligible_spend DECIMAL(12,2);
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS customer_name VARCHAR;
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS email VARCHAR;
ALTER TABLE loyalty_work_owner_checks ADD COLUMN IF NOT EXISTS phone VARCHAR;
