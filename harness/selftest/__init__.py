"""Proving the harness: every suite against every flawed variant of the
reference, and the reference itself."""
