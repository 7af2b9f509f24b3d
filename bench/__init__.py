"""Warden's benchmark suite: ``python -m bench`` (``make bench``).

It measures, in one run:

- on one set of 21 rules (``bench/rules21/``), policy evaluation with Warden's engine
  against a hand-written Python function, CEL (``common-expression-language``) and
  Cedar (``cedarpy``), after checking that all four engines agree on every generated
  request; and `warden.Gate.decide` with every check on, as p50 / p99 latency;
- on the payments fixture project (``tests/fixtures/payments/``), durable governed calls
  (``Gate.execute`` on SQLite, ``synchronous=FULL``) from 32 threads with group commit
  against one commit per call, and the latency durability adds; then batched audit
  appends, and ``verify_rows`` over the database and over an export file.

Results are printed as a table and written to ``bench/results.json``.
"""
