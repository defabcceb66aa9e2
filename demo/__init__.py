"""``prsteward demo``: prsteward's real code against the local sim, for a first look.

A package of its own, beside ``bench/``: it runs the sim (``sim/``), which prsteward's own
packages (``bot/``, ``ledger/``, ``policies/``) never import. See :mod:`demo.loop`.
"""
