"""taskq-flask: run taskq tasks inside a Flask app's context, configured from
``app.config``, with ``flask taskq`` commands."""

from __future__ import annotations

from taskq_flask.extension import TaskQFlask

__all__ = ["TaskQFlask"]
