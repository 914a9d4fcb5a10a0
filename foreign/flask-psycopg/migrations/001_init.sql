-- 001_init: token ledger tables (contract names), plus the constraints and
-- indexes we rely on. Idempotent: safe to run on a database that already has
-- it (the app runs it at every start, under an advisory lock).

CREATE TABLE IF NOT EXISTS users (
    id              BIGSERIAL PRIMARY KEY,
    supabase_id     TEXT NOT NULL UNIQUE,
    email           TEXT,
    display_name    TEXT,
    is_creator      BOOLEAN NOT NULL DEFAULT FALSE,
    total_earnings  NUMERIC(18, 2) NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS token_balances (
    id              BIGSERIAL PRIMARY KEY,
    user_id         TEXT NOT NULL UNIQUE REFERENCES users (supabase_id),
    balance         BIGINT NOT NULL DEFAULT 0,
    total_earned    BIGINT NOT NULL DEFAULT 0,
    total_purchased BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_balances_balance_nonnegative CHECK (balance >= 0)
);

CREATE TABLE IF NOT EXISTS token_transactions (
    id                       BIGSERIAL PRIMARY KEY,
    user_id                  TEXT NOT NULL REFERENCES users (supabase_id),
    type                     TEXT NOT NULL,
    tokens                   BIGINT NOT NULL,
    amount_usd               NUMERIC(18, 2),
    bonus_tokens             BIGINT NOT NULL DEFAULT 0,
    stripe_payment_intent_id TEXT UNIQUE,
    client_idempotency_key   TEXT,
    status                   TEXT NOT NULL DEFAULT 'pending',
    related_user_id          TEXT,
    channel                  TEXT,
    call_id                  TEXT,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT token_transactions_status_known CHECK (
        status IN ('pending', 'requires_action', 'completed', 'failed', 'canceled')
    )
);

CREATE INDEX IF NOT EXISTS token_transactions_user_created_idx
    ON token_transactions (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS token_transactions_user_key_idx
    ON token_transactions (user_id, client_idempotency_key)
    WHERE client_idempotency_key IS NOT NULL;

-- One row per credit a creator receives; (earning_type, source_id) names the
-- credit, so a replayed credit cannot earn twice.
CREATE TABLE IF NOT EXISTS creator_earnings (
    id              BIGSERIAL PRIMARY KEY,
    earning_type    TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    CONSTRAINT creator_earnings_source_unique UNIQUE (earning_type, source_id),
    creator_id      TEXT NOT NULL REFERENCES users (supabase_id),
    fan_id          TEXT,
    tokens_earned   BIGINT NOT NULL,
    usd_value       NUMERIC(18, 2) NOT NULL,
    description     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS creator_earnings_creator_idx
    ON creator_earnings (creator_id, created_at DESC);

-- Our own table: outcomes of requests that carried a clientIdempotencyKey,
-- so a retry gets the first answer back instead of moving money again.
CREATE TABLE IF NOT EXISTS api_idempotency_keys (
    user_id         TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    route           TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    status_code     INTEGER,
    response        JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, idem_key)
);

-- Audit trail of webhook deliveries we accepted (not used for dedupe: the
-- purchase row's status transition is the guard).
CREATE TABLE IF NOT EXISTS stripe_webhook_events (
    event_id        TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    payment_intent  TEXT,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    deliveries      INTEGER NOT NULL DEFAULT 1
);
