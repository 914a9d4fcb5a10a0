// X-Api-Token: a bare HS256 JWT (no "Bearer"), audience "credits-api", the
// account id in `uid`, `exp` required. Anything else is 401 before the body
// is even parsed (the hook runs onRequest).

import { jwtVerify, errors as joseErrors } from 'jose';
import { ApiError } from './errors.js';
import { defect } from './defects.js';

const MAX_ACCOUNT_ID = 200;

export function makeAuthenticate(config) {
  const key = new TextEncoder().encode(config.jwtSecret);
  const options = {
    algorithms: ['HS256'],
    audience: config.jwtAudience,
    // jose checks exp only when the token has one; we want it always.
    requiredClaims: defect('jwt-exp-optional') ? [] : ['exp'],
  };

  return async function authenticate(request) {
    const token = request.headers['x-api-token'];
    if (typeof token !== 'string' || token.length === 0) {
      throw new ApiError(401, 'unauthenticated', 'Send your API token in X-Api-Token');
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, options));
    } catch (err) {
      const reason = err instanceof joseErrors.JOSEError ? err.code : 'ERR_MALFORMED';
      request.log.info({ reason }, 'token refused');
      throw new ApiError(401, 'invalid_token', 'The API token is invalid or expired');
    }
    const uid = payload.uid;
    if (typeof uid !== 'string' || uid.length === 0 || uid.length > MAX_ACCOUNT_ID) {
      throw new ApiError(401, 'invalid_token', 'The API token names no account');
    }
    request.accountId = uid;
  };
}
