-- 001_init: token ledger schema.
-- Idempotent on purpose: the service applies it at every start (under an
-- advisory lock), and a test harness may already have loaded this file.

CREATE TABLE IF NOT EXISTS users (
    id              BIGSERIAL PRIMARY KEY,
    supabase_id     TEXT        NOT NULL,
    email           TEXT,
    display_name    TEXT,
    is_creator      BOOLEAN     NOT NULL DEFAULT FALSE,
    total_earnings  NUMERIC(20, 2) NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_supabase_id_key UNIQUE (supabase_id),
    CONSTRAINT users_total_earnings_nonneg CHECK (total_earnings >= 0)
);

CREATE TABLE IF NOT EXISTS token_balances (
    id            BIGSERIAL PRIMARY KEY,
    user_id       TEXT        NOT NULL REFERENCES users (supabase_id) ON DELETE CASCADE,
    balance       BIGINT      NOT NULL DEFAULT 0,
    total_earned  BIGINT      NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_balances_user_id_key UNIQUE (user_id),
    CONSTRAINT token_balances_balance_nonneg CHECK (balance >= 0),
    CONSTRAINT token_balances_total_earned_nonneg CHECK (total_earned >= 0)
);

CREATE TABLE IF NOT EXISTS token_transactions (
    id                        BIGSERIAL PRIMARY KEY,
    user_id                   TEXT        NOT NULL REFERENCES users (supabase_id) ON DELETE CASCADE,
    type                      TEXT        NOT NULL,
    tokens                    BIGINT      NOT NULL,
    amount_usd                NUMERIC(12, 2),
    bonus_tokens              BIGINT      NOT NULL DEFAULT 0,
    stripe_payment_intent_id  TEXT,
    client_idempotency_key    TEXT,
    status                    TEXT        NOT NULL DEFAULT 'pending',
    related_user_id           TEXT,
    channel                   TEXT,
    call_id                   TEXT,
    description               TEXT,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_transactions_type_check
        CHECK (type IN ('purchase', 'tip', 'call', 'grant', 'refund', 'adjustment')),
    CONSTRAINT token_transactions_status_check
        CHECK (status IN ('pending', 'requires_action', 'completed', 'failed', 'canceled'))
);

CREATE UNIQUE INDEX IF NOT EXISTS token_transactions_stripe_pi_key
    ON token_transactions (stripe_payment_intent_id);  -- NULLs stay distinct
CREATE INDEX IF NOT EXISTS token_transactions_user_created_idx
    ON token_transactions (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS creator_earnings (
    id             BIGSERIAL PRIMARY KEY,
    creator_id     TEXT        NOT NULL REFERENCES users (supabase_id) ON DELETE CASCADE,
    earning_type   TEXT        NOT NULL,
    source_id      TEXT        NOT NULL,
    tokens_earned  BIGINT      NOT NULL,
    usd_value      NUMERIC(20, 2) NOT NULL,
    description    TEXT,
    fan_id         TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT creator_earnings_tokens_positive CHECK (tokens_earned > 0)
);

CREATE UNIQUE INDEX IF NOT EXISTS creator_earnings_type_source_key
    ON creator_earnings (earning_type, source_id);
CREATE INDEX IF NOT EXISTS creator_earnings_creator_idx
    ON creator_earnings (creator_id, created_at DESC);

-- Client idempotency keys (purchase, tip, call deduct): first outcome wins.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id              TEXT        NOT NULL,
    idempotency_key      TEXT        NOT NULL,
    route                TEXT        NOT NULL,
    request_fingerprint  TEXT        NOT NULL,
    response_status      INTEGER,
    response_body        JSONB,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);

-- Stripe webhook events already handled (deliveries are at-least-once).
CREATE TABLE IF NOT EXISTS stripe_webhook_events (
    event_id      TEXT        PRIMARY KEY,
    type          TEXT        NOT NULL,
    object_id     TEXT,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     TEXT        PRIMARY KEY,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO schema_migrations (version) VALUES ('001_init') ON CONFLICT DO NOTHING;
