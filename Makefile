# The two front-door commands: `make demo` and `make test`. Both build their own .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU build that these machines carry on local disk.
TORCH_PIN ?= torch==2.13.0

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(BIN)/.installed

test: venv
	$(BIN)/python -m pytest tests

DEMO_OUT ?= scroll_38912x2048.png
demo: venv
	$(BIN)/nuwa-inf extend nuwa_inf/assets/example_scroll.png -o $(DEMO_OUT) --width 38912 --height 2048 --preview scroll_preview.png --overwrite
	@echo "result: $(abspath $(DEMO_OUT))  preview: $(abspath scroll_preview.png)"

.PHONY: venv test demo
