// The Fastify app: shared handles (sql, stripe, config) as decorators, the
// authenticated /v1 routes, the raw-body Stripe hook, health, one error shape.

import Fastify from 'fastify';
import { makeAuthenticate } from './auth.js';
import { errorBody, errorHandler, notFoundHandler } from './errors.js';
import checkoutRoutes from './routes/checkout.js';
import healthRoutes from './routes/health.js';
import hookRoutes from './routes/hooks.js';
import transferRoutes from './routes/transfers.js';
import walletRoutes from './routes/wallet.js';

export function buildApp({ config, sql, stripe, logger }) {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 1024 * 1024,
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
    // callId travels in the path and may be 200 characters (more once encoded).
    routerOptions: { maxParamLength: 2048 },
    // Router-level refusals (bad URL encoding, over-long parameters) in our shape.
    frameworkErrors: (err, request, reply) => {
      reply.code(err.statusCode || 400).send(errorBody('bad_url', 'The request URL could not be read'));
    },
  });

  app.decorate('config', config);
  app.decorate('sql', sql);
  app.decorate('stripe', stripe);
  app.decorateRequest('accountId', null);

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', request.id);
    return payload;
  });

  app.register(healthRoutes);

  // Everything under /v1 needs a valid X-Api-Token, checked before the body is read.
  const authenticate = makeAuthenticate(config);
  app.register(
    async (api) => {
      api.addHook('onRequest', authenticate);
      api.register(checkoutRoutes);
      api.register(transferRoutes);
      api.register(walletRoutes);
    },
    { prefix: '/v1' },
  );

  app.register(hookRoutes, { prefix: '/hooks' });
  return app;
}
