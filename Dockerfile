# One image for every Boardwire service; docker-compose.yml picks the binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p board-service -p ws-gateway -p agent-bridge \
    && mkdir -p /out \
    && cp target/release/board-service target/release/ws-gateway target/release/agent-bridge /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 boardwire
COPY --from=build /out/ /usr/local/bin/
USER boardwire
ENV RUST_LOG=info LOG_FORMAT=json
