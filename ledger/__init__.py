"""The ledger: everything prsteward knows, in SQL (SQLite by default, PostgreSQL for replicas).

This package is the only place that speaks SQL. Open one with ``ledger.db.Ledger(url)``; every
query function takes that ``Ledger`` and runs as one transaction (``db.transaction()`` to
write, ``db.read()`` to only read: on SQLite a read then never waits for a writer).

- ``ledger.db``: ``Ledger``, ``make_engine``, ``normalise_url`` (sqlite:///, postgresql://,
  postgres:// -> async drivers), ``redacted`` (URL without password, for messages);
- ``ledger.models``: the tables (``table_of(Model)`` gives Core columns for typed queries);
- ``ledger.migrate``: ``upgrade``/``upgrade_async`` (run at start), ``current``, ``head_revision``;
- ``ledger.inbox``: the webhook inbox (store, batch store, claim, finish, requeue, counts);
- ``ledger.repositories``: installations, repositories, poll state, config, watch-only;
- ``ledger.pulls``: PR snapshots, observations (only on change), the dirty set, sweep closes;
- ``ledger.jsonl``: lossless export/import of the whole ledger.
Other modules hold the queries of one feature each (their docstrings say whose).
"""
