"""
slotengine's public test kit.

Hypothesis strategies for slotengine's values (`slotengine.testing.strategies`) and brute-force oracles
(`slotengine.testing.oracle`) that are slow but obviously right, to test fast code against. This package
imports hypothesis, so it is only for test suites.
"""
