-- fastify-credits: a double-entry credits ledger.
-- Idempotent (IF NOT EXISTS / ON CONFLICT): the service applies it at every
-- start under an advisory lock, and it may also have been loaded beforehand.

CREATE TABLE IF NOT EXISTS accounts (
    id          text PRIMARY KEY,
    kind        text NOT NULL DEFAULT 'fan' CHECK (kind IN ('fan', 'creator', 'system')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The other side of every purchase and every grant.
INSERT INTO accounts (id, kind) VALUES ('sys:stripe', 'system'), ('sys:grants', 'system')
ON CONFLICT (id) DO NOTHING;

-- Cached balances. available always equals the account's
-- sum(credit - debit) over the entries of posted journals.
CREATE TABLE IF NOT EXISTS wallets (
    account_id        text PRIMARY KEY REFERENCES accounts (id),
    available         bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    lifetime_earned   bigint NOT NULL DEFAULT 0 CHECK (lifetime_earned >= 0),
    earned_usd_cents  bigint NOT NULL DEFAULT 0 CHECK (earned_usd_cents >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One row per business event. Checkouts start pending and are posted by the
-- payment_intent.succeeded webhook; transfers and grants are posted at once.
CREATE TABLE IF NOT EXISTS journal (
    id                     bigserial PRIMARY KEY,
    kind                   text NOT NULL CHECK (kind IN ('checkout', 'tip', 'call_minutes', 'grant')),
    status                 text NOT NULL CHECK (status IN ('pending', 'posted', 'failed', 'canceled')),
    account_id             text NOT NULL REFERENCES accounts (id),  -- the fan / initiator
    counterparty_id        text REFERENCES accounts (id),           -- creator of a tip or call
    credits                bigint NOT NULL CHECK (credits > 0),
    bonus_credits          bigint NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
    amount_cents           integer,
    stripe_payment_intent  text UNIQUE,
    idempotency_key        text,
    call_id                text,
    channel                text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    posted_at              timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkout_has_payment CHECK (
        kind <> 'checkout' OR (stripe_payment_intent IS NOT NULL AND amount_cents IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS journal_account_idx ON journal (account_id);
CREATE INDEX IF NOT EXISTS journal_counterparty_idx ON journal (counterparty_id);

-- Double entry: each posted journal's entries balance (sum debit = sum credit).
CREATE TABLE IF NOT EXISTS ledger_entries (
    id          bigserial PRIMARY KEY,
    journal_id  bigint NOT NULL REFERENCES journal (id),
    account_id  text NOT NULL REFERENCES accounts (id),
    debit       bigint NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit      bigint NOT NULL DEFAULT 0 CHECK (credit >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_sided CHECK (debit = 0 OR credit = 0),
    CONSTRAINT not_empty CHECK (debit + credit > 0)
);
CREATE INDEX IF NOT EXISTS ledger_entries_journal_idx ON ledger_entries (journal_id);
CREATE INDEX IF NOT EXISTS ledger_entries_account_idx ON ledger_entries (account_id);

-- What a creator is owed in USD, one row per credit received.
CREATE TABLE IF NOT EXISTS creator_payouts (
    id           bigserial PRIMARY KEY,
    creator_id   text NOT NULL REFERENCES accounts (id),
    source_kind  text NOT NULL,
    source_id    text NOT NULL,
    credits      bigint NOT NULL CHECK (credits > 0),
    usd_cents    bigint NOT NULL CHECK (usd_cents >= 0),
    fan_id       text REFERENCES accounts (id),
    journal_id   bigint REFERENCES journal (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT creator_payouts_source_key UNIQUE (source_kind, source_id)
);
CREATE INDEX IF NOT EXISTS creator_payouts_creator_idx ON creator_payouts (creator_id);

-- Client Idempotency-Key per account: claimed first (status_code NULL while the
-- request runs), then the first answer is stored and replayed.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    account_id    text NOT NULL,
    key           text NOT NULL,
    route         text NOT NULL,
    request_hash  text NOT NULL,
    status_code   integer,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (account_id, key)
);

-- Webhook deliveries we acted on (audit only: exactly-once posting is decided
-- by the journal row's status, not by event ids).
CREATE TABLE IF NOT EXISTS stripe_events (
    event_id     text PRIMARY KEY,
    type         text NOT NULL,
    object_id    text,
    outcome      text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
