"""Hooks the condition plugin declares for other plugins (a plugin extending a plugin).

A plugin that wants to add comparison operators implements::

    from hookline import hookimpl

    @hookimpl
    def register_condition_operators(register):
        register("is_even", lambda left, right, options: left % 2 == 0, unary=True)

These specifications are added to Hookline's plugin manager by the condition plugin itself
(through the host's ``add_hookspecs`` hook; see docs/reference/condition.md, "Adding operators").
"""

from __future__ import annotations

from typing import Callable

from hookline import hookspec


@hookspec
def register_condition_operators(register: Callable[..., None]) -> None:
    """Add operators to the ``condition`` and ``switch`` nodes.

    Called once when the condition plugin builds its operator table (when the host builds its
    type registry: app start, every CLI command).

    :param register: call ``register(name, function, *, description="", unary=False,
        check_right=None)`` for each operator.

        * ``name``: a lower-case identifier used as ``op`` in workflows. A name already taken
          (built in, or by another plugin) raises :class:`hookline.PluginError` naming both
          plugins; the host refuses to start.
        * ``function(left, right, options) -> bool``: ``left`` and ``right`` are the resolved
          JSON values (``right`` is ``None`` for unary operators); ``options`` is a
          :class:`hookline_condition.Options` (``case_sensitive``, ``loose``). Raise
          :class:`hookline_condition.Incomparable` (a ``TypeError``) with a sentence for the
          user when the values cannot be compared: the job fails with that message. Any other
          exception, or a result that is not a bool, is the plugin's bug: the job ends ``error``.
        * ``unary=True``: the operator takes no ``right``; a workflow giving one is refused.
        * ``check_right(value) -> str | None``: validates a literal (non-template) ``right``
          when the workflow is saved; return a problem sentence or ``None``.

    Return nothing; the return value is ignored.
    """
