"""Overload benchmark of perflayer's ResponseOptimizer: ``python -m benchmarks.overload``."""
