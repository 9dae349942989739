-- The web-hook inbox: an event answered 2xx is a committed row here.
CREATE TABLE webhook_inbox (
    id              bigserial PRIMARY KEY,
    adapter         text NOT NULL,
    event_id        text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    headers         jsonb NOT NULL DEFAULT '{}',
    body            bytea NOT NULL,
    status          text NOT NULL DEFAULT 'pending', -- pending, delivered, dead
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    order_key       text,
    -- The duplicate check is this key, in the insert itself.
    UNIQUE (adapter, event_id)
);
CREATE INDEX webhook_inbox_due ON webhook_inbox (next_attempt_at) WHERE status = 'pending';
