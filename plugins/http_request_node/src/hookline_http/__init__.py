"""hookline-http: the HTTP Request node for Hookline (node type ``http-request``).

It calls other HTTP APIs from a workflow, behind an egress guard that connects only to public
addresses unless the operator admits others (``HOOKLINE_HTTP_ALLOW``). See
docs/reference/http-request.md in the Hookline repository.
"""
