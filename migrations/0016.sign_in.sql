-- depends: 0015.compare
-- Sign-in with an OpenID Connect provider (ocicat.sign_in, api.sign_in).
--
-- A user made by signing in is tied to the provider's (issuer, subject), never to a user name: a local user named
-- like someone at the provider is a different user. Their roles from the provider are grants of source 'sign-in',
-- replaced whole at every sign-in and every check while they stay signed in; an administrator's own grants
-- ('local') beside them are never touched by it. Both count, the higher role on a path winning, but the provider's
-- only until users.sign_in_until: its last answer plus OCICAT_OIDC_STALE_SECONDS. So roles the provider has not
-- confirmed for that long (it is down, the user never calls again, sign-in was switched off) lapse by themselves,
-- for every reader alike: the API, and the deliveries of catalog events (user_may_view).
ALTER TABLE grants ADD COLUMN source text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'sign-in'));
-- (user_id, path) first: user_may_view looks a user's grants up by path for every delivery
ALTER TABLE grants DROP CONSTRAINT grants_pkey, ADD PRIMARY KEY (user_id, path, source);
ALTER TABLE users ADD COLUMN sign_in_admin boolean NOT NULL DEFAULT false,  -- an admin rule matched at the last check
                  ADD COLUMN sign_in_until timestamptz;  -- the provider's roles (grants, sign_in_admin) count until

CREATE TABLE sign_ins (
    user_id        bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    issuer         text NOT NULL,
    subject        text NOT NULL,
    -- the provider's tokens, encrypted with a key from OCICAT_SECRET_KEY, to ask it again (ocicat.sign_in.Sealer)
    refresh_token  bytea,
    access_token   bytea,
    claims         jsonb NOT NULL DEFAULT '{}',  -- userinfo at the last check, as the provider gave it
    answered_at    timestamptz NOT NULL DEFAULT now(),  -- the roles were last read from the provider then
    asked_at       timestamptz NOT NULL DEFAULT now(),  -- ... and last asked for then (answered or not)
    checking_until timestamptz,  -- one API process asks now, and no other may until then (ocicat.sign_in.recheck)
    signed_in_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, subject)
);

-- A browser session after a sign-in: the cookie holds ocicat_<id>_<secret>; only the secret's SHA-256 is kept, as
-- for API tokens. The CSRF token is sent back by the UI in a header with every state-changing request.
CREATE TABLE sessions (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sha256  bytea NOT NULL,
    csrf_token     text NOT NULL,
    id_token       text,  -- the hint for the provider's logout
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
