CREATE TABLE "token_entries" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "lookup_hash" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "subject" TEXT,
    "client_id" TEXT NOT NULL,
    "grant_id" TEXT,
    "session_uid" TEXT,
    "scope" TEXT,
    "audience" TEXT,
    "payload" TEXT,
    "user_code_hash" TEXT,
    "created_at" DATETIME NOT NULL,
    "expires_at" DATETIME NOT NULL,
    "redeemed_at" DATETIME,
    "revoked_at" DATETIME
);
CREATE UNIQUE INDEX "token_entries_lookup_hash_key" ON "token_entries"("lookup_hash");
CREATE INDEX "token_entries_subject_created_at_idx" ON "token_entries"("subject", "created_at");
CREATE INDEX "token_entries_client_id_created_at_idx" ON "token_entries"("client_id", "created_at");
CREATE INDEX "token_entries_grant_id_idx" ON "token_entries"("grant_id");
CREATE INDEX "token_entries_expires_at_idx" ON "token_entries"("expires_at");
CREATE INDEX "token_entries_user_code_hash_idx" ON "token_entries"("user_code_hash");

CREATE TABLE "provider_records" (
    "model" TEXT NOT NULL,
    "id" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "grant_id" TEXT,
    "uid" TEXT,
    "expires_at" DATETIME,
    "consumed_at" DATETIME,
    PRIMARY KEY ("model", "id")
);
CREATE INDEX "provider_records_model_uid_idx" ON "provider_records"("model", "uid");
CREATE INDEX "provider_records_model_grant_id_idx" ON "provider_records"("model", "grant_id");
CREATE INDEX "provider_records_expires_at_idx" ON "provider_records"("expires_at");

CREATE TABLE "clients" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "metadata" TEXT NOT NULL,
    "secret_hash" TEXT,
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL
);

CREATE TABLE "users" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "username" TEXT NOT NULL,
    "email" TEXT,
    "name" TEXT,
    "password_hash" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL
);
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

CREATE TABLE "keys" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "use" TEXT NOT NULL,
    "alg" TEXT NOT NULL,
    "material" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "retired_at" DATETIME
);
CREATE INDEX "keys_use_created_at_idx" ON "keys"("use", "created_at");
