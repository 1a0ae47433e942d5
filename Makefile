# One command each on a fresh machine: `make run` builds, installs the
# offline model when no OpenAI key or server is configured, and starts the
# TUI; `make test` runs every test (all of them, even after a failure, so
# one run names every failing test). Both first check what the build (and
# the tests) need besides Rust, installing it on Debian/Ubuntu or naming the
# packages elsewhere (scripts/prereqs.sh), so a missing cmake or libclang is
# not an error from deep inside llama.cpp's build script.
.PHONY: run test model

BIN := target/release/persona-sim

run:
	bash scripts/prereqs.sh run
	cargo build --release
	@if [ -z "$$OPENAI_API_KEY$$OPENAI_BASE_URL" ]; then $(BIN) model fetch; fi
	$(BIN)

model:
	bash scripts/prereqs.sh run
	cargo build --release
	$(BIN) model fetch

test:
	bash scripts/prereqs.sh test
	cargo test --release --all-targets --no-fail-fast
