# tmuxgate gateway image. Build: docker build -t tmuxgate .   Run: see docker-compose.yml
# Node 24: the maintained LTS line (Node 20 reached its end of life in April 2026).
FROM node:24-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-fund --no-audit
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
COPY scripts/install-system-deps.sh /usr/local/bin/install-system-deps.sh
RUN bash /usr/local/bin/install-system-deps.sh --runtime-only && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY deploy/config.docker.yaml /etc/tmuxgate/config.yaml
# keys, data and the pair accounts' homes are volumes: never baked into the image. The OS accounts
# themselves are re-created at start from the store (same names and uids), so /etc stays the image's.
VOLUME ["/var/lib/tmuxgate/keys", "/var/lib/tmuxgate/data", "/var/lib/tmuxgate/home"]
EXPOSE 2222
ENV TMUXGATE_CONFIG=/etc/tmuxgate/config.yaml
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/tmuxgate.js"]
CMD ["serve"]
