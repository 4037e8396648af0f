# The GoD-DB image: one worker per container, as deploy/kubernetes/goddb.yaml runs it.
#
#   docker build -t goddb:latest .
#   docker run --rm -v goddb-data:/data goddb:latest worker -discovery nats://nats:4222 --node-id n1
#
# Two stages: `build` installs every package and compiles the TypeScript; the
# runtime stage keeps only what a worker runs (dist/src, the production
# packages, bin/, config/), as the non-root user goddb (uid and gid 10001),
# with its data on the /data volume and the HTTP port (health, readiness,
# metrics) on 8080. test/integration/deploy.test.ts checks that every path,
# command and port named here and in deploy/ exists in this layout.

FROM node:24-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
# No install scripts: the native packages (lmdb, cbor-extract, msgpackr-extract)
# ship prebuilds for linux x64 and arm64, and the build below is explicit.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# The flock command (util-linux, in every Debian image) guards the data directory.
RUN groupadd --system --gid 10001 goddb \
 && useradd --system --uid 10001 --gid goddb --home-dir /data --no-create-home --shell /usr/sbin/nologin goddb \
 && mkdir -p /data \
 && chown goddb:goddb /data
WORKDIR /opt/goddb
COPY --from=build /build/package.json ./package.json
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY bin ./bin
COPY config ./config
# Worker settings the image fixes; everything else comes from flags or GODDB_* variables.
# The HEALTHCHECK reads GODDB_HTTP_PORT: change the port there, not with -port.
ENV GODDB_DATA_DIR=/data \
    GODDB_HTTP_HOST=0.0.0.0 \
    GODDB_HTTP_PORT=8080
VOLUME ["/data"]
EXPOSE 8080
USER goddb
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.GODDB_HTTP_PORT || 8080) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/goddb/bin/goddb.js"]
CMD ["worker"]
