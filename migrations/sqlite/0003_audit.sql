CREATE TABLE "audit_events" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "actor_kind" TEXT,
    "actor_id" TEXT,
    "method" TEXT NOT NULL,
    "route" TEXT,
    "action" TEXT,
    "target_id" TEXT,
    "status" INTEGER NOT NULL,
    "created_at" DATETIME NOT NULL
);
CREATE INDEX "audit_events_created_at_id_idx" ON "audit_events"("created_at", "id");
