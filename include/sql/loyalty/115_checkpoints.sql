-- Checkpoints of the guests this run recomputed, as of the run's day (schema 050): the next
-- incremental run replays such a guest from here. A guest revoked as of the run's day gets
-- none (it is recomputed from its first check), nor does a guest joined into another.
DELETE FROM loyalty_guest_checkpoints
WHERE EXISTS (SELECT 1 FROM loyalty_work_guests w
              WHERE w.guest_id = loyalty_guest_checkpoints.guest_id)
   OR EXISTS (SELECT 1 FROM loyalty_work_guest_remap r
              WHERE r.old_guest_id = loyalty_guest_checkpoints.guest_id);

-- postgresql: SET enable_nestloop = off
INSERT INTO loyalty_guest_checkpoints (guest_id, checkpoint_on, external_id, enrolled_on,
                                       balance, last_visit_on, last_location_id,
                                       last_check_id, window_spend, qualifying_checks,
                                       refunded_checks, checks, first_visit_on, lifetime_spend,
                                       lifetime_refunded, lifetime_net_spend, customer_name,
                                       email, phone)
SELECT o.guest_id, o.eval_on, o.external_id, o.enrolled_on, st.balance, lv.visit_on,
       lv.last_location_id, lv.last_check_id, st.window_spend, st.qualifying_checks,
       st.refunded_checks, gs.checks, gs.first_visit_on, gs.lifetime_spend,
       gs.lifetime_refunded, gs.lifetime_net_spend, ct.customer_name, ct.email, ct.phone
FROM loyalty_work_owners o
JOIN loyalty_work_owner_states st ON st.owner_id = o.owner_id
JOIN loyalty_work_guest_spend gs ON gs.guest_id = o.guest_id
LEFT JOIN (SELECT owner_id, visit_on, last_location_id, last_check_id,
                  ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY visit_on DESC) AS latest
           FROM loyalty_work_absences) lv
  ON lv.owner_id = o.owner_id AND lv.latest = 1
LEFT JOIN loyalty_work_owner_contacts ct ON ct.owner_id = o.owner_id
WHERE o.owner_kind = 'guest' AND st.revoked_reason IS NULL;
