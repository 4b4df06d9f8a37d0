"""livetrain benchmarks: `python -m bench.run_all` (see docs/benchmarks.md)."""
