"""prsteward's benchmarks: what a sweep, a quiet cycle, an escalation and a webhook cost, measured
against the sim, side by side with a naive poller and with the floor.

``python -m bench`` runs them all and writes ``docs/benchmarks.md`` and ``docs/benchmarks.json``;
``python -m bench --small`` runs a tiny version of each (CI keeps them working with it).
"""
