"""Jira REST client with response caching."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

logger = logging.getLogger(__name__)


@dataclass
class JiraIssue:
    """The fields of an issue we use."""

    key: str
    summary: str
    status: str
    assignee: Optional[str] = None
    story_points: Optional[float] = None


class JiraClient:
    """Fetch issues from Jira, caching GET responses for ``cache_seconds``."""

    def __init__(self, base_url: str, token: str, cache_seconds: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self._response_cache: Dict[str, Any] = {}
        self._cache_hits = 0
        self._cache_misses = 0

    def _cache_lookup(self, url: str) -> Optional[Any]:
        entry = self._response_cache.get(url)
        if entry is not None and time.monotonic() < entry["expires"]:
            self._cache_hits += 1
            return entry["payload"]
        self._cache_misses += 1
        return None

    def _request(self, path: str) -> Any:
        url = f"{self.base_url}{path}"
        payload = self._cache_lookup(url)
        if payload is not None:
            return payload
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        self._response_cache[url] = {"payload": payload,
                                     "expires": time.monotonic() + self.cache_seconds}
        return payload

    def issue(self, key: str) -> JiraIssue:
        """Return one issue."""
        data = self._request(f"/rest/api/2/issue/{key}")
        fields = data.get("fields", {})
        return JiraIssue(
            key=data["key"],
            summary=fields.get("summary", ""),
            status=(fields.get("status") or {}).get("name", "unknown"),
            assignee=(fields.get("assignee") or {}).get("displayName"),
            story_points=fields.get("customfield_10016"),
        )

    def search(self, jql: str, limit: int = 50) -> List[JiraIssue]:
        """Return the issues matching ``jql``."""
        from urllib.parse import quote

        data = self._request(f"/rest/api/2/search?jql={quote(jql)}&maxResults={limit}")
        return [self.issue(item["key"]) for item in data.get("issues", [])]
