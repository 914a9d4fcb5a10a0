'use strict';

const jwt = require('jsonwebtoken');
const { config } = require('./config');
const { HttpError } = require('./errors');
const { defect } = require('./defects');

const unauthorized = () => new HttpError(401, 'unauthorized', 'Missing or invalid access token');

/** Supabase-style access token: HS256, sub = supabase_id, exp required. */
function authenticateToken(req, res, next) {
  const header = req.get('authorization') || '';
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  if (!match) return next(unauthorized());
  let claims;
  try {
    claims = jwt.verify(match[1], config.jwtSecret, { algorithms: ['HS256'] });
  } catch (err) {
    return next(unauthorized());
  }
  if (typeof claims !== 'object' || claims === null) return next(unauthorized());
  // jsonwebtoken only checks exp when it is present: a token without one never expires.
  if (!defect('jwt-no-exp') && typeof claims.exp !== 'number') return next(unauthorized());
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 200) {
    return next(unauthorized());
  }
  req.user = { supabase_id: claims.sub };
  return next();
}

module.exports = { authenticateToken };
