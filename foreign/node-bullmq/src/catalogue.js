'use strict';

// What is on sale. Money is integer cents, never floats; a NUMERIC column gets
// an exact decimal string.

const PACKAGES = Object.freeze(
  [
    // tokens, price in cents, bonus percent
    [100, 99, 0],
    [500, 499, 0],
    [1000, 999, 0],
    [5000, 4999, 5],
    [10000, 9999, 5],
  ].map(([tokens, cents, bonusPercent]) => Object.freeze({
    tokens,
    cents,
    bonus: Math.floor((tokens * bonusPercent) / 100),
  })),
);

/** The package of exactly `tokens` tokens, or null. */
const packageOf = (tokens) => PACKAGES.find((p) => p.tokens === tokens) || null;

const onSale = () => PACKAGES.map((p) => p.tokens);

/** Integer cents as an exact decimal string for NUMERIC columns. */
const usd = (cents) => `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;

// A creator earns 0.05 USD per token received: n tokens are 5n cents.
const CREATOR_CENTS_PER_TOKEN = 5;
const creatorValue = (tokens) => usd(tokens * CREATOR_CENTS_PER_TOKEN);

module.exports = { packageOf, onSale, usd, creatorValue };
