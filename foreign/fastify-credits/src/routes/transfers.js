// POST /v1/tips and POST /v1/calls/:callId/minutes: a fan pays a creator.
//
// One transaction per request: claim the Idempotency-Key, lock both wallets in
// account id order, debit, credit, journal + two entries + payout, store the
// answer. Deadlocks and serialization failures restart it (db.transaction).

import { transaction } from '../db.js';
import { defect } from '../defects.js';
import { badRequest } from '../errors.js';
import { claimInTransaction, requestHash, storeAnswer } from '../idempotency.js';
import { transfer } from '../ledger.js';
import { idempotencyKeyOf, parseCredits, requireObject, requireText } from '../validation.js';
import { sendOutcome } from './reply.js';

export default async function transferRoutes(app) {
  const { sql } = app;

  async function run(request, reply, t, hashFields, answer) {
    const key = defect('transfer-key-ignored') ? null : idempotencyKeyOf(request);
    const fanId = request.accountId;
    if (t.creatorId === fanId && !defect('self-tip')) {
      throw badRequest('self_transfer', 'You cannot send credits to yourself');
    }
    // The clock-payout-source defect: a payout id taken from the arrival time.
    const clockSourceId = defect('clock-payout-source') ? `${t.kind}:${Date.now()}` : null;
    const hash = requestHash(t.kind, hashFields);

    const result = await transaction(
      sql,
      request.log,
      async (tx) => {
        if (key) {
          const stored = await claimInTransaction(tx, fanId, key, t.kind, hash);
          if (stored) return stored;
        }
        const moved = await transfer(tx, { ...t, fanId, idempotencyKey: key, clockSourceId });
        const outcome = moved.status === 200 ? { status: 200, body: answer(moved) } : moved;
        if (key) await storeAnswer(tx, fanId, key, outcome);
        return { outcome, replay: false };
      },
      { retry: !defect('unordered-locks-no-retry') },
    );
    if (result.outcome.status === 200 && !result.replay) {
      request.log.info({ kind: t.kind, from: fanId, to: t.creatorId, credits: t.credits }, 'transfer posted');
    }
    return sendOutcome(reply, result.outcome, result.replay);
  }

  app.post('/tips', async (request, reply) => {
    const body = requireObject(request.body);
    const creatorId = requireText(body.recipient, 'recipient');
    const credits = parseCredits(body.amount, 'amount');
    const context = body.context;
    if (context === null || typeof context !== 'object' || Array.isArray(context)) {
      throw badRequest('invalid_field', 'context must be an object with a channel');
    }
    const channel = requireText(context.channel, 'context.channel');
    return run(
      request,
      reply,
      { kind: 'tip', creatorId, credits, channel, callId: null },
      [creatorId, credits, channel],
      (m) => ({
        transfer: { id: m.journalId, amount: credits, channel },
        balances: { sender: m.sender, recipient: m.recipient },
      }),
    );
  });

  app.post('/calls/:callId/minutes', async (request, reply) => {
    const callId = requireText(request.params.callId, 'callId');
    const body = requireObject(request.body);
    const creatorId = requireText(body.creator, 'creator');
    const credits = parseCredits(body.credits, 'credits');
    return run(
      request,
      reply,
      { kind: 'call_minutes', creatorId, credits, channel: null, callId },
      [callId, creatorId, credits],
      (m) => ({
        transfer: { id: m.journalId, amount: credits, call_id: callId },
        balances: { sender: m.sender },
      }),
    );
  });
}
