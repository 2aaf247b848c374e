# Everything installs into .venv/ at the project root. `make demo` and `make test`
# each do all set-up themselves on a fresh machine.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.gantl-installed

.PHONY: demo test test-all lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	# CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(VPY) -c "import torch" 2>/dev/null || $(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q -e ".[all]"
	# Test fixture: a real pretrained 64 px DCGAN face generator. Its metadata asks for
	# torchvision and wandb, which gantl never imports (and PyPI's torchvision breaks
	# beside the CPU torch), so it is installed without dependencies.
	$(VPY) -m pip install -q --no-deps gan-face-generate==1.1.1
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gantl demo

test: $(STAMP)
	$(VPY) -m pytest -q

test-all: $(STAMP)
	$(VPY) -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
