# ---- build: compile native modules, generate the Prisma clients, compile TypeScript ----
FROM node:22-bookworm-slim AS build

# better-sqlite3 falls back to node-gyp when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# `prisma generate` only needs this path to exist (scripts/prisma-generate.mjs defaults it to
# process.execPath too); set here it also stops @prisma/engines' postinstall from downloading
# a schema engine that nothing uses.
ENV PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node \
    PRISMA_HIDE_UPDATE_MESSAGE=1 \
    CHECKPOINT_DISABLE=1

# Only what `npm ci` and its `prepare` script (= npm run build: prisma generate into
# src/storage/generated, then tsc into dist/) need; views/ and migrations/ are copied in the runtime stage.
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src

# --omit=optional as well: prisma and typescript are optional peers of @prisma/client, so the
# lockfile marks them devOptional and `--omit=dev` alone keeps them (~250 MB: CLI, Studio, tsc).
# The compiled clients in dist/ import only @prisma/client/runtime/*, a production dependency.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund \
 && rm -rf node_modules/.tally-prisma node_modules/.cache

# ---- runtime ----
FROM node:22-bookworm-slim AS runtime

# glibc keeps freed argon2id buffers (19 MiB each) mapped unless large blocks get their own mmap.
# Each hash then faults its 19 MiB in again, 4 KiB at a time: about 100 ms of CPU per sign-in instead
# of 35. glibc.malloc.hugetlb=1 asks for transparent huge pages on those mmaps (the kernel's default
# "madvise" mode grants them): 2 MiB faults, about 45 ms, memory still returned (bench/ANALYSIS.md).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=file:/app/data/tally.db \
    MALLOC_MMAP_THRESHOLD_=131072 \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1

WORKDIR /app

# Application files stay owned by root (read-only for the server); only /app/data is writable.
# package.json is needed at runtime: its "type": "module" makes dist/*.js ES modules.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY views ./views
COPY migrations ./migrations

# Created and chowned before VOLUME, so a fresh named volume inherits the ownership.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]

USER node
EXPOSE 3000

# No curl in the slim image: node's fetch asks /readyz, which also pings the database.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# main applies pending migrations before it listens; it handles SIGTERM (graceful shutdown).
CMD ["node", "dist/main.js"]
