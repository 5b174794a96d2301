# syntax=docker/dockerfile:1
# boomerang's container image: a builder stage compiles the locked dependencies, the runtime stage is Debian slim
# with what steps need (bash, CA certificates) and tini as PID 1, which forwards SIGTERM to boomerang and reaps the
# processes steps leave behind. See README, "Run it in a container".
#
#   docker build --build-arg BOOMERANG_GIT_COMMIT=$(git rev-parse HEAD) -t boomerang .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The build context has no .git (see .dockerignore): the commit `boomerang --version` prints comes from here.
ARG BOOMERANG_GIT_COMMIT=unknown
ENV BOOMERANG_GIT_COMMIT=${BOOMERANG_GIT_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin boomerang \
    && cp target/release/boomerang /usr/local/bin/boomerang

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin boomerang \
    && mkdir -p /data \
    && chown boomerang:boomerang /data
COPY --from=build /usr/local/bin/boomerang /usr/local/bin/boomerang
ENV DATA_DIR=/data \
    LISTEN=0.0.0.0:3000 \
    HOME=/data
VOLUME ["/data"]
EXPOSE 3000
USER boomerang
# tini is PID 1: it passes SIGTERM on to boomerang (which drains: see SHUTDOWN_GRACE) and reaps orphaned step
# processes, which the kernel hands to PID 1.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["boomerang", "serve"]
