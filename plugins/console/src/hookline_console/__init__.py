"""Hookline's web console: a plugin serving server-rendered pages at ``/console/``.

It reads and writes through the host's services (``host.workflows``, ``host.executions``,
``host.replays``, ...), the ones the management API and the CLI use; it holds no SQL of its own
but for its sign-in sessions.
"""
