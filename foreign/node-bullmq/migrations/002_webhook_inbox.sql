-- 002_webhook_inbox: every Stripe event we acknowledged, before we answer 2xx.
-- The worker credits from here (a BullMQ job is only a wake-up call); the
-- sweeper re-enqueues whatever is still pending, so a lost Redis loses nothing.

CREATE TABLE IF NOT EXISTS webhook_inbox (
    event_id           TEXT        PRIMARY KEY,
    type               TEXT        NOT NULL,
    payment_intent_id  TEXT        NOT NULL,
    payload            JSONB       NOT NULL,
    status             TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processed')),
    result             TEXT,
    attempts           INTEGER     NOT NULL DEFAULT 0,
    last_error         TEXT,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at       TIMESTAMPTZ
);

-- The sweeper's scan: only pending rows, oldest first.
CREATE INDEX IF NOT EXISTS webhook_inbox_pending_idx
    ON webhook_inbox (received_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_inbox_intent_idx
    ON webhook_inbox (payment_intent_id);
