-- Take the sync lease when it is free, expired, or already ours (then it is renewed).
INSERT INTO passkit_sync_lease (lease_name, holder, expires_at)
VALUES ('passkit_sync', :holder, :expires_at)
ON CONFLICT (lease_name) DO UPDATE SET holder = EXCLUDED.holder,
                                       expires_at = EXCLUDED.expires_at
WHERE passkit_sync_lease.expires_at < :now OR passkit_sync_lease.holder = EXCLUDED.holder;
