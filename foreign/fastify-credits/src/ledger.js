// The money-moving SQL. Every function here takes the transaction it runs in
// (a postgres.js sql.begin handle); none of them opens one.

import { CREATOR_CENTS_PER_CREDIT, SYSTEM_ACCOUNTS } from './config.js';
import { defect } from './defects.js';

// ---------------------------------------------------------------- accounts

export async function findAccounts(db, ids) {
  const rows = await db`select id, kind from accounts where id in ${db(ids)}`;
  return new Map(rows.map((r) => [r.id, r.kind]));
}

export async function accountExists(db, id) {
  const [row] = await db`select 1 as ok from accounts where id = ${id}`;
  return Boolean(row);
}

// ---------------------------------------------------------------- checkouts

/**
 * The pending (or failed) journal row of a checkout. The webhook may have
 * written it first (it creates the row from the intent's metadata when it
 * beats us): then that row stays as it is.
 */
export async function recordCheckout(db, c) {
  const [inserted] = await db`
    insert into journal (kind, status, account_id, credits, bonus_credits, amount_cents,
                         stripe_payment_intent, idempotency_key)
    values ('checkout', ${c.status}, ${c.accountId}, ${c.credits}, ${c.bonus}, ${c.amountCents},
            ${c.paymentIntent}, ${c.idempotencyKey})
    on conflict (stripe_payment_intent) do nothing
    returning id, status`;
  if (inserted) return { ...inserted, inserted: true };
  const [existing] = await db`
    select id, status from journal where stripe_payment_intent = ${c.paymentIntent}`;
  return { ...existing, inserted: false };
}

/** Lock the checkout row of an intent (null when there is none). */
export async function lockCheckout(db, paymentIntent) {
  const [row] = await db`
    select id, status, account_id, credits, bonus_credits from journal
    where stripe_payment_intent = ${paymentIntent} and kind = 'checkout'
    for update`;
  return row || null;
}

/** Post a locked checkout journal: entries (sys:stripe -> fan) and the wallet. */
export async function postCheckout(db, row) {
  const total = row.credits + row.bonus_credits;
  await db`update journal set status = 'posted', posted_at = now(), updated_at = now() where id = ${row.id}`;
  await db`
    insert into ledger_entries (journal_id, account_id, debit, credit) values
      (${row.id}, ${SYSTEM_ACCOUNTS.stripe}, ${total}, 0),
      (${row.id}, ${row.account_id}, 0, ${total})`;
  const [wallet] = await db`
    insert into wallets (account_id, available) values (${row.account_id}, ${total})
    on conflict (account_id) do update
      set available = wallets.available + excluded.available, updated_at = now()
    returning available`;
  return wallet.available;
}

/** Mark a checkout failed or canceled; a posted one is never touched. */
export async function closeCheckout(db, row, status) {
  if (row.status === 'posted' && !defect('failed-overwrites-posted')) return 'already_posted';
  if (row.status === status) return 'unchanged';
  await db`update journal set status = ${status}, updated_at = now() where id = ${row.id}`;
  return status;
}

// ---------------------------------------------------------------- transfers

const fail = (status, code, message) => ({ status, body: { error: { code, message } } });

async function lockWallets(db, fanId, creatorId) {
  if (defect('unordered-locks-no-retry')) {
    // Payer first, then payee: two transfers in opposite directions deadlock.
    const [fan] = await db`select account_id, available from wallets where account_id = ${fanId} for update`;
    await db`insert into wallets (account_id) values (${creatorId}) on conflict (account_id) do nothing`;
    await db`select 1 from wallets where account_id = ${creatorId} for update`;
    return fan ? fan.available : 0;
  }
  if (defect('wallet-read-modify-write')) {
    await db`insert into wallets (account_id) values (${creatorId}) on conflict (account_id) do nothing`;
    const [fan] = await db`select available from wallets where account_id = ${fanId}`;
    return fan ? fan.available : 0;
  }
  if (!defect('first-credit-skips-earned')) {
    // The creator's first credit: make sure its wallet exists so it can be locked.
    await db`insert into wallets (account_id) values (${creatorId}) on conflict (account_id) do nothing`;
  }
  // Both wallets in one statement, always in account id order: no lock-order deadlocks.
  const rows = await db`
    select account_id, available from wallets
    where account_id in ${db([fanId, creatorId])}
    order by account_id
    for update`;
  const fan = rows.find((r) => r.account_id === fanId);
  return fan ? fan.available : 0;
}

async function debitFan(db, fanId, credits, available) {
  if (defect('wallet-read-modify-write')) {
    const next = available - credits; // from a read nobody locked
    await db`update wallets set available = ${next}, updated_at = now() where account_id = ${fanId}`;
    return next;
  }
  const [row] = await db`
    update wallets set available = available - ${credits}, updated_at = now()
    where account_id = ${fanId} and available >= ${credits}
    returning available`;
  return row ? row.available : null;
}

async function creditCreator(db, creatorId, credits) {
  const cents = credits * CREATOR_CENTS_PER_CREDIT;
  if (defect('first-credit-skips-earned')) {
    const [row] = await db`
      insert into wallets (account_id, available, earned_usd_cents) values (${creatorId}, ${credits}, ${cents})
      on conflict (account_id) do update
        set available = wallets.available + excluded.available,
            lifetime_earned = wallets.lifetime_earned + excluded.available,
            earned_usd_cents = wallets.earned_usd_cents + excluded.earned_usd_cents,
            updated_at = now()
      returning available`;
    return row.available;
  }
  const [row] = await db`
    update wallets
       set available = available + ${credits},
           lifetime_earned = lifetime_earned + ${credits},
           earned_usd_cents = earned_usd_cents + ${cents},
           updated_at = now()
     where account_id = ${creatorId}
     returning available`;
  return row.available;
}

/**
 * Move credits from the fan to a creator: the wallets, a posted journal row,
 * its two entries and the creator's payout row. Returns the answer as
 * {status, body}; a refusal (404, 422) moves nothing.
 */
export async function transfer(db, t) {
  const accounts = await findAccounts(db, [t.fanId, t.creatorId]);
  if (!accounts.has(t.fanId)) return fail(404, 'account_not_found', 'Your account does not exist');
  if (accounts.get(t.creatorId) !== 'creator') {
    return fail(404, 'recipient_not_found', 'No creator with that id');
  }

  const available = await lockWallets(db, t.fanId, t.creatorId);
  if (available < t.credits) return fail(422, 'insufficient_funds', 'Not enough credits in your wallet');
  const sender = await debitFan(db, t.fanId, t.credits, available);
  if (sender === null) return fail(422, 'insufficient_funds', 'Not enough credits in your wallet');
  const recipient = await creditCreator(db, t.creatorId, t.credits);

  const [journal] = await db`
    insert into journal (kind, status, account_id, counterparty_id, credits, idempotency_key,
                         call_id, channel, posted_at)
    values (${t.kind}, 'posted', ${t.fanId}, ${t.creatorId}, ${t.credits}, ${t.idempotencyKey},
            ${t.callId}, ${t.channel}, now())
    returning id`;
  if (defect('debit-entry-only')) {
    await db`insert into ledger_entries (journal_id, account_id, debit) values (${journal.id}, ${t.fanId}, ${t.credits})`;
  } else {
    await db`
      insert into ledger_entries (journal_id, account_id, debit, credit) values
        (${journal.id}, ${t.fanId}, ${t.credits}, 0),
        (${journal.id}, ${t.creatorId}, 0, ${t.credits})`;
  }
  // One payout per credit, keyed by its journal row (unique, and no clock in it).
  const sourceId = t.clockSourceId || `${t.kind}:${journal.id}`;
  await db`
    insert into creator_payouts (creator_id, source_kind, source_id, credits, usd_cents, fan_id, journal_id)
    values (${t.creatorId}, ${t.kind}, ${sourceId}, ${t.credits},
            ${t.credits * CREATOR_CENTS_PER_CREDIT}, ${t.fanId}, ${journal.id})`;

  return { status: 200, journalId: journal.id, sender, recipient };
}
