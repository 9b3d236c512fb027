"""The Response node for Hookline: answers the caller of a synchronous webhook."""

from hookline_response.node import ResponseNode

__all__ = ["ResponseNode"]
