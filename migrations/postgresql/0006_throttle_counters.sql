CREATE TABLE "throttle_counters" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "failures" INTEGER NOT NULL,
    "first_at" TIMESTAMP(3) NOT NULL,
    "last_at" TIMESTAMP(3) NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL
);
CREATE INDEX "throttle_counters_expires_at_idx" ON "throttle_counters"("expires_at");
