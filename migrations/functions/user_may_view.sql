-- Whether a user may view a repository now: an administrator, a public path (by the longest visibility rule, else
-- the configured default), or a role of reporter and above on the path or one of its ancestors. Asked for each
-- delivery of a catalog event when it is sent, so a revoked grant stops deliveries at once (indexer.delivery.send),
-- and so do roles from the identity provider once they lapse (migrations/0016.sign_in.sql).
CREATE OR REPLACE FUNCTION user_may_view(viewer bigint, name text, default_public boolean) RETURNS boolean
LANGUAGE sql STABLE AS $$
    -- parameters are qualified: a column of the same name (users.name) would win over them
    SELECT coalesce((SELECT u.admin OR (u.sign_in_admin AND u.sign_in_until > now())
                       FROM users u WHERE u.id = user_may_view.viewer), false)
        OR coalesce(path_public(user_may_view.name), user_may_view.default_public)
        OR EXISTS (SELECT 1 FROM grants g JOIN users u ON u.id = g.user_id
                    WHERE g.user_id = user_may_view.viewer AND role_level(g.role) >= role_level('reporter')
                      AND (g.source = 'local' OR u.sign_in_until > now())
                      AND (g.path = user_may_view.name OR g.path = ANY (path_ancestors(user_may_view.name))))
$$;
