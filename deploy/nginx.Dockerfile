# Debian's nginx for deploy/compose.replicas.yaml (the configuration is mounted: deploy/nginx.conf).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
