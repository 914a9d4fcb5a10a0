"""tokenproof: a concurrency test and verification harness for token ledgers."""

__version__ = "0.1.0"
