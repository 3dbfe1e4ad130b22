CREATE TABLE "revocation_feed" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "event" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL
);
CREATE INDEX "revocation_feed_created_at_idx" ON "revocation_feed"("created_at");
