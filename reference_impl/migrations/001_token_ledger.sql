-- Token ledger schema of the reference service: the hardening patches'
-- migration 142 with the constraints the patches rely on but never state.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    supabase_id     TEXT NOT NULL UNIQUE,
    is_creator      BOOLEAN NOT NULL DEFAULT FALSE,
    total_earnings  NUMERIC(18, 2) NOT NULL DEFAULT 0 CHECK (total_earnings >= 0),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE token_balances (
    user_id       TEXT PRIMARY KEY REFERENCES users (supabase_id),
    balance       BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    total_earned  BIGINT NOT NULL DEFAULT 0 CHECK (total_earned >= 0),
    -- Bumped on every change; the balance stream sends it so that clients can
    -- drop events that arrive out of order.
    version       BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE token_transactions (
    id                        BIGSERIAL PRIMARY KEY,
    user_id                   TEXT NOT NULL REFERENCES users (supabase_id),
    type                      TEXT NOT NULL,
    tokens                    BIGINT NOT NULL,
    amount_usd                NUMERIC(18, 2),
    bonus_tokens              BIGINT NOT NULL DEFAULT 0 CHECK (bonus_tokens >= 0),
    stripe_payment_intent_id  TEXT UNIQUE,
    client_idempotency_key    TEXT,
    status                    TEXT NOT NULL,
    related_user_id           TEXT,
    channel                   TEXT,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_transactions_status_check
        CHECK (status IN ('pending', 'requires_action', 'completed', 'failed', 'canceled')),
    CONSTRAINT token_transactions_client_key_unique UNIQUE (user_id, client_idempotency_key)
);

CREATE INDEX token_transactions_user_idx ON token_transactions (user_id);

CREATE TABLE creator_earnings (
    id             BIGSERIAL PRIMARY KEY,
    creator_id     TEXT NOT NULL REFERENCES users (supabase_id),
    earning_type   TEXT NOT NULL,
    source_id      TEXT NOT NULL,
    tokens_earned  BIGINT NOT NULL CHECK (tokens_earned > 0),
    usd_value      NUMERIC(18, 2) NOT NULL,
    description    TEXT,
    fan_id         TEXT REFERENCES users (supabase_id),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT creator_earnings_source_unique UNIQUE (earning_type, source_id)
);

-- Requests made with a client idempotency key: the first outcome is stored
-- and replayed; a different body under the same key is refused.
CREATE TABLE request_keys (
    user_id       TEXT NOT NULL REFERENCES users (supabase_id),
    key           TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    http_status   INTEGER,
    response      JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Stripe events seen, for the record and to answer duplicates cheaply.
CREATE TABLE stripe_events (
    event_id           TEXT PRIMARY KEY,
    type               TEXT NOT NULL,
    payment_intent_id  TEXT,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
