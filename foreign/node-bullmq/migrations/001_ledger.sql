-- 001_ledger: the token ledger (the tables the contract names) and client keys.
-- Applied at every start of the web and the worker process, under an advisory
-- lock; idempotent (IF NOT EXISTS everywhere), so a harness that loaded it
-- first with --target-schema is fine too.

CREATE TABLE IF NOT EXISTS users (
    id              BIGSERIAL PRIMARY KEY,
    supabase_id     TEXT           NOT NULL,
    email           TEXT,
    display_name    TEXT,
    is_creator      BOOLEAN        NOT NULL DEFAULT FALSE,
    total_earnings  NUMERIC(20, 2) NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ    NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ    NOT NULL DEFAULT now(),
    CONSTRAINT users_supabase_id_key UNIQUE (supabase_id)
);

CREATE TABLE IF NOT EXISTS token_balances (
    id            BIGSERIAL PRIMARY KEY,
    user_id       TEXT        NOT NULL REFERENCES users (supabase_id) ON DELETE CASCADE,
    balance       BIGINT      NOT NULL DEFAULT 0,
    total_earned  BIGINT      NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_balances_user_id_key UNIQUE (user_id),
    CONSTRAINT token_balances_balance_check CHECK (balance >= 0)
);

CREATE TABLE IF NOT EXISTS token_transactions (
    id                        BIGSERIAL PRIMARY KEY,
    user_id                   TEXT        NOT NULL REFERENCES users (supabase_id) ON DELETE CASCADE,
    type                      TEXT        NOT NULL
        CHECK (type IN ('purchase', 'tip', 'call', 'grant', 'refund', 'adjustment')),
    tokens                    BIGINT      NOT NULL,
    amount_usd                NUMERIC(12, 2),
    bonus_tokens              BIGINT      NOT NULL DEFAULT 0,
    stripe_payment_intent_id  TEXT,
    client_idempotency_key    TEXT,
    status                    TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'requires_action', 'completed', 'failed', 'canceled')),
    related_user_id           TEXT,
    channel                   TEXT,
    call_id                   TEXT,
    description               TEXT,
    credited_at               TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One purchase row per PaymentIntent (NULLs, i.e. transfers, stay distinct).
CREATE UNIQUE INDEX IF NOT EXISTS token_transactions_payment_intent_uq
    ON token_transactions (stripe_payment_intent_id);
CREATE INDEX IF NOT EXISTS token_transactions_user_idx
    ON token_transactions (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS creator_earnings (
    id             BIGSERIAL PRIMARY KEY,
    creator_id     TEXT           NOT NULL REFERENCES users (supabase_id) ON DELETE CASCADE,
    earning_type   TEXT           NOT NULL,
    source_id      TEXT           NOT NULL,
    tokens_earned  BIGINT         NOT NULL CHECK (tokens_earned > 0),
    usd_value      NUMERIC(20, 2) NOT NULL,
    fan_id         TEXT,
    description    TEXT,
    created_at     TIMESTAMPTZ    NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS creator_earnings_source_uq
    ON creator_earnings (earning_type, source_id);

-- Client idempotency keys, one namespace per user: the first outcome is kept
-- and replayed; a key reused for another request is refused.
CREATE TABLE IF NOT EXISTS client_request_keys (
    user_id          TEXT        NOT NULL,
    client_key       TEXT        NOT NULL,
    route            TEXT        NOT NULL,
    fingerprint      TEXT        NOT NULL,
    response_status  INTEGER,
    response_body    JSONB,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_key)
);
