'use strict';

const jwt = require('jsonwebtoken');
const { config } = require('./config');
const { Refused } = require('./errors');

const refuse = () => new Refused(401, 'unauthorized', 'A valid access token is required');

/** Supabase-style bearer token: HS256, sub = users.supabase_id, exp required. */
function requireUser(req, res, next) {
  const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') || '');
  if (!match) return next(refuse());
  let claims;
  try {
    claims = jwt.verify(match[1], config.jwtSecret, { algorithms: ['HS256'] });
  } catch {
    return next(refuse());
  }
  // jsonwebtoken checks exp only when a token has one: demand it.
  if (!claims || typeof claims !== 'object' || typeof claims.exp !== 'number') return next(refuse());
  if (typeof claims.sub !== 'string' || !claims.sub || claims.sub.length > 200) return next(refuse());
  req.userId = claims.sub;
  return next();
}

module.exports = { requireUser };
