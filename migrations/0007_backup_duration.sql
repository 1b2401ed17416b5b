-- How long each successful backup took on the cloud (its `updated_at` minus
-- its `created_at`, or as observed when the cloud gives no times), so that
-- polling can look densely only around the expected finish of the next one.
ALTER TABLE jobs ADD COLUMN backup_seconds REAL;
