"""A thin HTTP client returning uniform API responses."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Optional


@dataclass
class ApiResponse:
    """The result of one API call."""

    success: bool
    data: Optional[Any] = None
    error: Optional[str] = None
    status_code: int = 0
    elapsed_ms: float = 0.0
    headers: Dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {"success": self.success, "data": self.data, "error": self.error,
                "status_code": self.status_code, "elapsed_ms": self.elapsed_ms}


def success_response(data: Any, elapsed_ms: float = 0.0) -> Dict[str, Any]:
    """Build the dict form of a successful response."""
    return {"success": True, "data": data, "error": None, "elapsed_ms": elapsed_ms}


def error_response(message: str, elapsed_ms: float = 0.0) -> Dict[str, Any]:
    """Build the dict form of a failed response."""
    return {"success": False, "data": None, "error": message, "elapsed_ms": elapsed_ms}


class HttpClient:
    """GET and POST JSON with a timeout."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str) -> ApiResponse:
        """GET ``path`` and decode JSON."""
        return self._call(urllib.request.Request(self.base_url + path))

    def post(self, path: str, body: Dict[str, Any]) -> ApiResponse:
        """POST ``body`` as JSON to ``path``."""
        req = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._call(req)

    def _call(self, req: urllib.request.Request) -> ApiResponse:
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = json.loads(resp.read().decode("utf-8") or "null")
                return ApiResponse(True, data, None, resp.status,
                                   (time.perf_counter() - start) * 1000, dict(resp.headers))
        except urllib.error.HTTPError as exc:
            return ApiResponse(False, None, str(exc), exc.code,
                               (time.perf_counter() - start) * 1000)
        except (urllib.error.URLError, ValueError) as exc:
            return ApiResponse(False, None, str(exc), 0, (time.perf_counter() - start) * 1000)
