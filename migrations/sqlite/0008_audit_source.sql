-- Audit rows name the source IP and what a write created; refused unauthenticated attempts are
-- aggregated, one row per source IP and minute (the unique key) with a count.
ALTER TABLE "audit_events" ADD COLUMN "source_ip" TEXT;
ALTER TABLE "audit_events" ADD COLUMN "count" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "audit_events" ADD COLUMN "created_id" TEXT;
ALTER TABLE "audit_events" ADD COLUMN "refused_minute" DATETIME;
CREATE UNIQUE INDEX "audit_events_source_ip_refused_minute_key" ON "audit_events"("source_ip", "refused_minute");
