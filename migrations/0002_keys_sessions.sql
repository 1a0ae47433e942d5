-- API keys: only each key's SHA-256 is kept. A name is unique among the
-- active keys; a revoked key keeps its row (and its name can be reused).
CREATE TABLE api_keys (
    hash text PRIMARY KEY,
    name text NOT NULL,
    shown text NOT NULL,
    created timestamptz NOT NULL,
    revoked timestamptz
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked IS NULL;

-- Debate sessions: the session (settings, personas as they were, usage,
-- status) in `data`, its turns one row each, its report in its own table.
-- A running session is saved after every turn: a save rewrites the
-- session row and upserts its turns. Ids start with their date and time,
-- so the primary key's order is newest-first order.
CREATE TABLE sessions (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    status text NOT NULL,
    feature text NOT NULL,
    data jsonb NOT NULL
);

CREATE TABLE session_turns (
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE session_reports (
    session_id text PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    data jsonb NOT NULL
);
