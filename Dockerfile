# Runtime image of cross-cloud-relay: the `relay` CLI (GossipRouter, relay node and tools).
#
#   docker build -t relay .
#   docker run --rm relay --help
#   docker run --rm -p 12001:12001 -p 9000:9000 -e HEALTH_PORT=9000 relay router
#
# Three stages: `build` compiles the TypeScript with the dev dependencies, `prod-deps` installs the
# production dependencies alone, and the final stage holds only dist/ + those dependencies.
# See docs/IMAGE.md for the ports, the environment and the health check.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: dev dependencies + tsc -> dist/ -------------------------------------------------
# dist/ is plain JavaScript: for multi-platform builds, compile once on the builder's platform.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the TypeScript build before the sources are copied, and no
# dependency needs its install script to compile (the cache mount keeps warm rebuilds offline).
RUN --mount=type=cache,target=/root/.npm \
    ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
COPY tsconfig.json tsconfig.build.json ./
COPY contract ./contract
COPY runtime ./runtime
RUN ["npm", "run", "build"]

# ---- prod-deps: production dependencies only ------------------------------------------------
# On the target platform, so npm picks the right platform-specific packages if any appear.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# The CDKTF libraries (~870 MB) are optional peer and dev dependencies: the runtime never imports
# them, so --omit=dev leaves them out. `relay --help` in the image test loads every command and
# fails if one of them needed them.
RUN --mount=type=cache,target=/root/.npm \
    ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"]

# ---- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cross-cloud-relay" \
      org.opencontainers.image.description="relay runtime: JGroups-compatible GossipRouter, relay nodes and tools" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the process: the app never writes outside /tmp.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/contract ./dist/contract
COPY --from=build /src/dist/runtime ./dist/runtime
COPY containers/healthcheck.mjs ./healthcheck.mjs

# 7800 relay node cluster (TCP), 8080 relay node /healthz + /metrics,
# 12001 GossipRouter, 9000 GossipRouter /healthz + /metrics.
EXPOSE 7800 8080 12001 9000

# uid/gid 1000 = the `node` user of the base image; numeric so runAsNonRoot can verify it.
USER 1000:1000

# Port: $HEALTH_PORT, else the --http-port given to the command, else 9000 for `router`,
# else $HTTP_PORT, else 8080 (see docs/IMAGE.md).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "/app/healthcheck.mjs"]

ENTRYPOINT ["node", "/app/dist/runtime/cli/relay.js"]
CMD ["node"]
