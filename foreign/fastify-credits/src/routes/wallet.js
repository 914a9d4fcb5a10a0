// GET /v1/wallet: the caller's wallet (an account without one has nothing yet).

export default async function walletRoutes(app) {
  const { sql } = app;
  app.get('/wallet', async (request) => {
    const [row] = await sql`
      select available, lifetime_earned from wallets where account_id = ${request.accountId}`;
    return { wallet: { available: row ? row.available : 0, lifetime_earned: row ? row.lifetime_earned : 0 } };
  });
}
