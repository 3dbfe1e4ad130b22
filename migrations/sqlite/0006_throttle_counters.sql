CREATE TABLE "throttle_counters" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "failures" INTEGER NOT NULL,
    "first_at" DATETIME NOT NULL,
    "last_at" DATETIME NOT NULL,
    "expires_at" DATETIME NOT NULL
);
CREATE INDEX "throttle_counters_expires_at_idx" ON "throttle_counters"("expires_at");
