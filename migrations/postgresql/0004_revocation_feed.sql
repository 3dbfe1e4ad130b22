CREATE TABLE "revocation_feed" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "event" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL
);
CREATE INDEX "revocation_feed_created_at_idx" ON "revocation_feed"("created_at");
