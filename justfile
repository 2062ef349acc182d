# Boardwire developer recipes: each is one line you could also type.

# Run the whole stack in one process (a private PostgreSQL when DATABASE_URL is unset).
dev:
    cargo run --release

# Every test, against real PostgreSQL, gRPC and WebSocket (what CI runs).
test:
    cargo test --workspace

# Benchmarks that print figures.
bench:
    cargo bench -p board-service --bench move_task

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# The container path: PostgreSQL and each service in its own container.
compose-up:
    docker compose up --build
