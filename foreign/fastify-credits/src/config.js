// Settings from the environment, read once at start-up. A missing setting the
// service cannot work without stops it here, before it touches the database.

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9][0-9]*$/.test(raw)) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

function stripeEndpoint(base) {
  let url;
  try {
    url = new URL(base);
  } catch {
    throw new Error(`STRIPE_API_BASE is not a URL: ${JSON.stringify(base)}`);
  }
  const protocol = url.protocol.replace(/:$/, '');
  if (protocol !== 'http' && protocol !== 'https') {
    throw new Error(`STRIPE_API_BASE must be http(s), not ${protocol}`);
  }
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'https' ? 443 : 80,
    protocol,
  };
}

export function loadConfig() {
  return Object.freeze({
    host: '127.0.0.1',
    port: positiveInt('PORT', 3000),
    databaseUrl: required('DATABASE_URL'),
    dbPoolMax: positiveInt('DB_POOL_MAX', 10),
    jwtSecret: required('JWT_SECRET'),
    jwtAudience: 'credits-api',
    stripeSecretKey: required('STRIPE_SECRET_KEY'),
    stripe: stripeEndpoint(process.env.STRIPE_API_BASE || 'https://api.stripe.com'),
    stripeWebhookSecret: required('STRIPE_WEBHOOK_SECRET'),
    logLevel: process.env.LOG_LEVEL || 'info',
  });
}

// Credit packages on sale: credits -> price in US cents.
export const PACKAGES = new Map([
  [100, 99],
  [500, 499],
  [1000, 999],
  [5000, 4999],
  [10000, 9999],
]);

export const BONUS_FROM = 5000; // packages of this size and more earn a bonus
export const BONUS_PERCENT = 5; // floored

export function bonusFor(credits) {
  return credits >= BONUS_FROM ? Math.floor((credits * BONUS_PERCENT) / 100) : 0;
}

// What a creator earns per credit received: 0.05 USD.
export const CREATOR_CENTS_PER_CREDIT = 5;

export const SYSTEM_ACCOUNTS = Object.freeze({ stripe: 'sys:stripe', grants: 'sys:grants' });
