"""Application wiring: builds the services and serves requests."""

from __future__ import annotations

import time
from typing import Any, Dict

from acme.context.realtime_monitor import RealTimeMonitor
from acme.integrations.http_client import HttpClient, error_response, success_response
from acme.mcp.mcp_integration import MCPIntegration
from acme.performance.cache_manager import LRUCacheManager
from acme.performance.memory_optimizer import ObjectPool
from acme.performance.response_optimizer import Priority, ResponseOptimizer
from acme.personas.advanced_personality_engine import AdvancedPersonalityEngine
from acme.personas.personality_processor import PersonalityProcessor
from acme.services.search_service import SearchService
from acme.utils.memory import MemoryManager


class Application:
    """The assistant application."""

    def __init__(self, config: Dict[str, Any]):
        self.config = config
        self.monitor = RealTimeMonitor()
        self.memory = MemoryManager(limit_mb=config.get("memory_limit_mb"))
        self.cache = LRUCacheManager(max_size=config.get("cache_size", 4096))
        self.optimizer = ResponseOptimizer(max_concurrent=config.get("concurrency", 8))
        self.buffers = ObjectPool(lambda: bytearray(64 * 1024))
        self.search = SearchService(config.get("documents", {}))
        self.http = HttpClient(config.get("api_url", "http://127.0.0.1:8080"))
        self.mcp = MCPIntegration(config.get("mcp_servers", {}))
        self.personas = PersonalityProcessor(config.get("personas", {}))
        self.engine = AdvancedPersonalityEngine(lambda p, r: f"[{p}] {r}", ["analyst", "coach"])

    async def handle(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """Serve one request."""
        started = time.perf_counter()
        if self.memory.check_pressure() == "critical":
            return error_response("overloaded")
        cached = await self.cache.get(request["query"])
        if cached is not None:
            return success_response(cached)

        async def work() -> Any:
            results = self.search.search(request["query"])
            text = self.engine.generate(request["query"])
            return {"results": results, "answer": self.personas.apply("analyst", text)}

        answer = await self.optimizer.submit(work, Priority.HIGH)
        await self.cache.set(request["query"], answer)
        self.monitor.track_request(started)
        return success_response(answer, elapsed_ms=(time.perf_counter() - started) * 1000)
