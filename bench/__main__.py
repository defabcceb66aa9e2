"""``python -m bench [--small] [--out DIR] [--only NAMES]``: see bench/runner.py."""

from bench.runner import main

raise SystemExit(main())
