-- Users' second factors, one row each: a TOTP authenticator (its secret sealed), or one recovery code
-- (its SHA-256). `kind` leaves room for passkeys (issue 18's later part) in the same table.
CREATE TABLE "user_factors" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "user_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "secret" TEXT,
    "lookup" TEXT,
    "label" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,
    "confirmed_at" TIMESTAMP(3),
    "last_step" INTEGER,
    "used_at" TIMESTAMP(3)
);
CREATE INDEX "user_factors_user_id_kind_idx" ON "user_factors"("user_id", "kind");
