-- Synthesis jobs (POST /v1/personas/generate with count > 1), so that any
-- server on this database answers GET and DELETE /v1/jobs/{id} for a job
-- another server runs. The server running a job writes it here after every
-- change; the others only read it, and ask it to stop via cancel_requested.

CREATE TABLE synthesis_jobs (
    id text PRIMARY KEY,
    -- The view's status, as a column for listing and cleanup.
    status text NOT NULL,
    -- The job exactly as GET /v1/jobs/{id} answers it.
    view jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The running server's last write: an unfinished job not written for
    -- long lost its server.
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Set by DELETE on a server that does not run the job; the server that
    -- does reads it and cancels the job.
    cancel_requested boolean NOT NULL DEFAULT false
);
-- Finished jobs oldest first (cleanup), unfinished ones by last write.
CREATE INDEX synthesis_jobs_status_updated ON synthesis_jobs (status, updated_at);
