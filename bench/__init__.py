"""Benchmarks and fault drills for o2o-dispatch (see docs/benchmarks/README.md).

- `python -m bench.load`: load generator, Temporal ceiling, timer scale, profile.
- `python -m bench.drills`: worker-kill, temporal-restart, postgres-stop, smtp-down.

Everything runs on loopback, in a temporary state folder, on ports of its own; every loop
is bounded in count and in time.
"""
