-- Bind each OAuth connect to the browser that started it.
--
-- A state proves which user asked for a consent URL, not who opens it: a
-- user could hand her URL to someone else, and the Google account that
-- person allowed would land in her row (and she could then send invitations
-- from it). /auth now also sets a short-lived HttpOnly cookie in the browser
-- that asked and stores only its SHA-256 here; the callback consumes a state
-- only together with that cookie (docs/reliability.md, "Attack surface").
--
-- States made before this migration have no browser_hash and can no longer
-- be finished: they live ten minutes, and the user starts again.
ALTER TABLE oauth_states ADD COLUMN IF NOT EXISTS browser_hash BYTEA;

-- /auth keeps at most a few live states per user (oauth.c drops the oldest),
-- which reads a user's states by age.
CREATE INDEX IF NOT EXISTS idx_oauth_states_user ON oauth_states(user_id, created_at);
