-- Users' roles (a JSON array of role names, e.g. ["admin"]) and whether the account is disabled.
ALTER TABLE "users" ADD COLUMN "roles" TEXT NOT NULL DEFAULT '[]';
ALTER TABLE "users" ADD COLUMN "disabled" BOOLEAN NOT NULL DEFAULT false;
