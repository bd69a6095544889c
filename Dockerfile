# Image for docker-compose.yml. The worker binds DW_WEB_HOST, which compose sets to the
# container's service name so that other workers (and Prometheus) can reach it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY alerts alerts
COPY schemas schemas
COPY kafka kafka
COPY scripts scripts
RUN pip install --no-cache-dir -e .
EXPOSE 6066
CMD ["disposal-watch", "worker"]
