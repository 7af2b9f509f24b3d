"""Warden's benchmark suite: ``python -m bench`` (``make bench``).

It measures, in one run and on one set of 21 rules (``bench/rules21/``):

- policy evaluation with Warden's engine against a hand-written Python function, CEL
  (``common-expression-language``) and Cedar (``cedarpy``), after checking that all four
  engines agree on every generated request;
- `warden.Gate.decide` with every check on, as p50 / p99 latency.

Results are printed as a table and written to ``bench/results.json``.
"""
