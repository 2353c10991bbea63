-- Retention: deliveries older than this many days are pruned, with all that was derived
-- from them. NULL: the install's setting (`retention.days`), which is off by default.
ALTER TABLE endpoints ADD COLUMN retention_days INTEGER;
