// A resource server: GET /reports needs a token with the api:read scope.
// ISSUER, CLIENT_ID and CLIENT_SECRET are this API's own client (it introspects and follows revocations);
// AUDIENCE is what tokens for this API carry in `aud` (tokens requested without a resource: the issuer).
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
  audience: process.env.AUDIENCE ?? process.env.ISSUER!, // required: a token for another API is refused
  redisUrl: process.env.REDIS_URL, // optional: shared cache and revocations through Redis
});

const app = express();
app.get('/reports', requireToken(validator, { scopes: ['api:read'] }), (req, res) => {
  res.json({ reports: [], for: req.token!.client_id });
});
await validator.ready(); // stops here if discovery names an endpoint off the issuer's origin
const port = Number(process.env.PORT ?? 4000);
const server = app.listen(port, () => console.log(`protected API on http://localhost:${port}/reports`));
process.once('SIGTERM', () => server.close(() => void validator.close()));
