// Sending an outcome ({status, body}) the same way whether it is fresh or a
// replay of a stored first answer.

export function sendOutcome(reply, outcome, replay = false) {
  if (replay) reply.header('Idempotent-Replayed', 'true');
  return reply.code(outcome.status).send(outcome.body);
}
