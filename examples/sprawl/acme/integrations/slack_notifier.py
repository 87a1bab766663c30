"""Post messages to Slack incoming webhooks."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any, Dict, List, Optional

logger = logging.getLogger(__name__)


def format_blocks(title: str, lines: List[str], link: Optional[str] = None) -> List[Dict[str, Any]]:
    """Return Slack blocks: a header, a bulleted body and an optional button."""
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(f"• {x}" for x in lines)}},
    ]
    if link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": link}
        ]})
    return blocks


class SlackNotifier:
    """Send messages to one webhook, dropping them when disabled."""

    def __init__(self, webhook_url: str, enabled: bool = True, channel: Optional[str] = None):
        self.webhook_url = webhook_url
        self.enabled = enabled
        self.channel = channel
        self.sent = 0

    def post(self, title: str, lines: List[str], link: Optional[str] = None) -> bool:
        """Post a message; return True when Slack accepted it."""
        if not self.enabled:
            return False
        payload: Dict[str, Any] = {"blocks": format_blocks(title, lines, link)}
        if self.channel:
            payload["channel"] = self.channel
        req = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                ok = resp.status == 200
        except OSError as exc:
            logger.warning("slack post failed: %s", exc)
            return False
        if ok:
            self.sent += 1
        return ok
