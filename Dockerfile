# syntax=docker/dockerfile:1
# prefork: a supervisor image. Build:  docker build -t prefork .
# Run:    docker run --rm -e DATABASE_URL=postgres://user:pass@db:5432/app prefork start --workers 4
# Checked without a Docker engine by test/dockerfile.test.ts (sources, user, entrypoint, a production-only install).
# Node 24 LTS. CI runs the image's install and start (test/dockerfile.test.ts) on Node 20, 22 and 24.

# ---- build: all dependencies, TypeScript compiled to dist/ -------------------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No lifecycle scripts: "prepare" would build before the sources are here; nothing else needs one to build.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json rolldown.config.js ./
COPY src ./src
RUN npm run build

# ---- run: production dependencies, dist/ and bin/, as the unprivileged node user --------------------------
FROM node:24-bookworm-slim
# tini is PID 1: it forwards SIGTERM/SIGINT to the primary and reaps orphans (a task's subprocess whose worker
# was killed would otherwise stay a zombie under a primary that never waits for it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: package.json's "prepare" (a build) must not run here, without dev dependencies.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# The working directory, writable by node: prefork.config.json is read from here, and without DATABASE_URL
# the embedded PostgreSQL keeps its data in /data/.prefork (mount a volume there to keep it).
RUN mkdir /data && chown node:node /data
WORKDIR /data
USER node
# Metrics and /healthz on every interface of the container; PREFORK_METRICS_PORT= (empty) turns them off.
ENV PREFORK_METRICS_PORT=9100 PREFORK_METRICS_HOST=0.0.0.0
EXPOSE 9100
STOPSIGNAL SIGTERM
# 200 from /healthz while the supervisor runs; 503 while it starts or stops. Without metrics: always healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const p = process.env.PREFORK_METRICS_PORT; if (!p) process.exit(0); fetch(`http://127.0.0.1:${p}/healthz`, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/prefork.js"]
CMD ["start"]
