"""Benchmarks run by hand against a local stack made in-process (`python -m bench.<name>`)."""
