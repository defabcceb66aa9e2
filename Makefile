.PHONY: bench bench-small

# Full-size benchmarks: writes docs/benchmarks.md and docs/benchmarks.json (see bench/runner.py).
bench:
	python3 -m bench

# Tiny sizes, to check they still run (CI runs this through tests/bench/test_bench_small.py).
bench-small:
	python3 -m bench --small
