-- One-time marks (a DPoP proof's or a client assertion's `jti`, a passkey challenge: replay-marks.ts)
-- get a table of their own, with the key (a hash made by the caller) and its expiry only. In
-- provider_records each mark also went into that table's three secondary indexes; here it is the
-- primary key's alone. The expiry has no index: marks live seconds to minutes, pruning scans this
-- small table, and an index would be a second write for every mark.
CREATE TABLE "replay_marks" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "expires_at" TIMESTAMP(3) NOT NULL
);

-- The marks already taken (provider_records, model 'ReplayDetection') that have not expired are
-- copied, so that a proof used just before the upgrade is still refused just after it. They are few:
-- each lives for a proof's `iat` window or a challenge's lifetime (a minute or a few). The expired
-- ones are left to `tally prune`, which deletes expired provider records.
INSERT INTO "replay_marks" ("key", "expires_at")
SELECT "id", "expires_at" FROM "provider_records"
WHERE "model" = 'ReplayDetection' AND "expires_at" > (now() AT TIME ZONE 'UTC');
