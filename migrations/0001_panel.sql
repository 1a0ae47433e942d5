-- The persona panel. Each persona is kept whole as JSON (`data`, exactly
-- what the panel file holds for it, optional and unknown fields included),
-- with the seed's fields as generated columns for SQL and indexes.
-- `position` is the panel order (the file's order); `panel.version` goes up
-- by one with every change, so a server knows when its cached copy is old.

CREATE TABLE panel (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO panel DEFAULT VALUES;

CREATE TABLE personas (
    id bigint PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
    position bigint NOT NULL,
    data jsonb NOT NULL CHECK ((data ->> 'id')::bigint = id),
    name text GENERATED ALWAYS AS (data ->> 'name') STORED,
    occupation text GENERATED ALWAYS AS (data ->> 'occupation') STORED,
    location text GENERATED ALWAYS AS (data ->> 'location') STORED,
    tech_proficiency text GENERATED ALWAYS AS (data ->> 'tech_proficiency') STORED,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personas_position ON personas (position);
