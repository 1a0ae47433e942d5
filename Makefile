# One command each on a fresh machine: `make run` builds, installs the
# offline model when no OpenAI key or server is configured, and starts the
# TUI; `make test` runs every test (all of them, even after a failure, so
# one run names every failing test).
.PHONY: run test model

BIN := target/release/persona-sim

run:
	cargo build --release
	@if [ -z "$$OPENAI_API_KEY$$OPENAI_BASE_URL" ]; then $(BIN) model fetch; fi
	$(BIN)

model:
	cargo build --release
	$(BIN) model fetch

test:
	cargo test --release --all-targets --no-fail-fast
