# Image for docker-compose.yml: the wheel, installed, run as an unprivileged user. The worker binds
# DW_WEB_HOST, which compose sets to the container's service name so that other workers (and
# Prometheus) can reach it; DW_PSEUDONYM_KEY must be given (README, "Security").
FROM python:3.11-slim AS build
# a C compiler for the compiled event reader (streams/codec/_event_reader.c): without it the wheel is
# built without it, and events are read in Python at about half the counting rate
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY streams streams
COPY alerts alerts
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --create-home --home-dir /home/dw --uid 10001 dw \
    && mkdir -p /data && chown dw /data
USER dw
WORKDIR /home/dw
EXPOSE 6066
CMD ["disposal-watch", "worker"]
