// A resource server: GET /reports needs a token with the api:read scope.
// ISSUER, CLIENT_ID and CLIENT_SECRET are this API's own client (it introspects and follows revocations).
import express from 'express';
import { createValidator, requireToken, type ValidationResult } from 'tally/validator';

declare global {
  namespace Express {
    interface Request {
      token?: ValidationResult; // set by requireToken
    }
  }
}

const validator = createValidator({
  issuer: process.env.ISSUER!,
  clientId: process.env.CLIENT_ID!,
  clientSecret: process.env.CLIENT_SECRET!,
  redisUrl: process.env.REDIS_URL, // optional: shared cache and revocations through Redis
});

const app = express();
app.get('/reports', requireToken(validator, { scopes: ['api:read'] }), (req, res) => {
  res.json({ reports: [], for: req.token!.client_id });
});
const port = Number(process.env.PORT ?? 4000);
const server = app.listen(port, () => console.log(`protected API on http://localhost:${port}/reports`));
process.once('SIGTERM', () => server.close(() => void validator.close()));
