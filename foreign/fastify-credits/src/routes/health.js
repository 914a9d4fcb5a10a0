// GET /healthz: 200 once migrations ran (the server only listens after them)
// and the database answers.

export default async function healthRoutes(app) {
  const { sql } = app;
  app.get('/healthz', async (request, reply) => {
    try {
      await sql`select 1 as ok`;
    } catch (err) {
      request.log.warn({ code: err.code }, 'health: database unreachable');
      return reply.code(503).send({ status: 'unavailable' });
    }
    return { status: 'ok' };
  });
}
