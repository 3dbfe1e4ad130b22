CREATE TABLE "revocation_passes" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "subject" TEXT,
    "client_id" TEXT,
    "grant_id" TEXT,
    "revoked_at" DATETIME NOT NULL,
    "due_at" DATETIME NOT NULL
);
CREATE INDEX "revocation_passes_due_at_idx" ON "revocation_passes"("due_at");
