-- The W3C traceparent of the ingest span, so that a delivery (also after
-- a restart, or on another instance) continues the ingest's trace. NULL
-- for events stored without tracing.
ALTER TABLE webhook_inbox ADD COLUMN traceparent text;
