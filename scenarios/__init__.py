"""Scenario suites run by `tokenproof verify`.

race, retry, threeds, webhooks, inputs, security, faults.
"""
