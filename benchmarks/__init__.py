"""Side-by-side benchmarks of perflayer against its peers; run as ``python -m benchmarks.NAME``."""
