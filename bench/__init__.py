"""Benchmarks of the hot on-sale (see run.py); they report, they are not tests."""
