"""Tests of the utils cache."""

from acme.utils.cache import CacheManager


def test_roundtrip(tmp_path):
    cache = CacheManager(cache_dir=str(tmp_path))
    cache.set("a", 1)
    assert cache.get("a") == 1
