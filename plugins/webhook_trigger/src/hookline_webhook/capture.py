"""Sample capture (Mingdao): arm a workflow's URL to store the next request as a sample instead
of running the workflow. PLACEHOLDER: the real implementation replaces this file."""

from __future__ import annotations

from typing import Any

from hookline import Host


class CaptureService:
    def __init__(self, host: Host) -> None:
        self.host = host

    async def take(self, workflow_key: str, context: dict[str, Any]) -> int | None:
        """If a capture is armed for ``workflow_key``, store ``context`` as its sample and
        return the capture id (the caller then answers without running the workflow)."""
        return None
