-- A sender-constrained token's binding, recorded in its ledger entry: the DPoP key thumbprint
-- (`cnf.jkt`, RFC 9449) or the client certificate thumbprint (`cnf.x5t#S256`, RFC 8705). Null: unbound.
ALTER TABLE "token_entries" ADD COLUMN "cnf_jkt" TEXT;
ALTER TABLE "token_entries" ADD COLUMN "cnf_x5t_s256" TEXT;
