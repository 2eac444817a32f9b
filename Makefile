# Shortcuts for scripts/setup.sh (which is all a fresh machine needs).
SCALE ?= laptop

.PHONY: install test book lab clean
install:
	bash scripts/setup.sh install
test:
	bash scripts/setup.sh test
book:
	bash scripts/setup.sh book $(SCALE)
lab: install
	.venv/bin/jupyter lab notebooks/
clean:
	rm -rf _build outputs book/_offline
