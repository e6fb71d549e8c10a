# tmuxgate gateway image. Build: docker build -t tmuxgate .   Run: see docker-compose.yml
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-fund --no-audit
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
COPY scripts/install-system-deps.sh /usr/local/bin/install-system-deps.sh
RUN bash /usr/local/bin/install-system-deps.sh --runtime-only && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY deploy/config.docker.yaml /etc/tmuxgate/config.yaml
# keys and data are volumes: never baked into the image.
VOLUME ["/var/lib/tmuxgate/keys", "/var/lib/tmuxgate/data"]
EXPOSE 2222
ENV TMUXGATE_CONFIG=/etc/tmuxgate/config.yaml
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/tmuxgate.js"]
CMD ["serve"]
