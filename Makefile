# The project's entry points. `make test` is the test command the README and CI use.
#
# VENV: where the recipe's Python environment lives (created on first use from
# models/recipe/requirements.txt; torch from PyPI is ~5.5 GB with its CUDA
# libraries, so CI keeps one outside the clone).
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python

.PHONY: test test-rust test-recipe venv

test: test-rust test-recipe

test-rust:
	cargo test
	# the C API's own tests (capi/; scripts/test-capi.sh builds and runs its C example)
	cargo test -p sammix-capi
	# the accurate bundle's reference vectors (LiteMedSAM, E = 64, classifier on embeddings)
	SAMMIX_REFERENCE_BUNDLE=models/sammix-us-medsam cargo test --test reference_graphs \
		--test reference_pipeline --test reference_prompt
	# the colonoscopy bundle's (the same encoder, RGB input: input.color = "rgb")
	SAMMIX_REFERENCE_BUNDLE=models/sammix-endo-medsam cargo test --test reference_graphs \
		--test reference_pipeline --test reference_prompt --test reference_prompt_parts
	# the real-time student's (one gray channel, E = 32, classifier on embeddings)
	SAMMIX_REFERENCE_BUNDLE=models/sammix-us-tiny cargo test --test reference_graphs \
		--test reference_pipeline --test reference_prompt --test reference_prompt_parts
	# no allocation per warm frame over 300 frames on our kernels, as release builds run
	# them (in the debug build above our crate is unoptimized: a 6-frame window)
	cargo test --release --test pipeline_alloc

test-recipe: venv
	cd models/recipe && $(PY) -m pytest

venv: $(VENV)/.installed

$(VENV)/.installed: models/recipe/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r models/recipe/requirements.txt
	touch $@
