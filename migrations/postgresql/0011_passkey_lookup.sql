-- Passkeys (issue 18) are rows of user_factors with kind 'passkey': `lookup` holds the credential id,
-- by which a passwordless sign-in finds its passkey (and so its user) before knowing who signs in.
CREATE INDEX "user_factors_kind_lookup_idx" ON "user_factors"("kind", "lookup");
