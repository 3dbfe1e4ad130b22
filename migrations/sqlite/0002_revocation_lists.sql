CREATE TABLE "revoked_tokens" (
    "lookup_hash" TEXT NOT NULL PRIMARY KEY,
    "type" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "revoked_at" DATETIME NOT NULL,
    "expires_at" DATETIME NOT NULL
);
CREATE INDEX "revoked_tokens_expires_at_idx" ON "revoked_tokens"("expires_at");

CREATE TABLE "revocation_events" (
    "kind" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "revoked_at" DATETIME NOT NULL,
    "expires_at" DATETIME NOT NULL,
    PRIMARY KEY ("kind", "value")
);
CREATE INDEX "revocation_events_expires_at_idx" ON "revocation_events"("expires_at");
