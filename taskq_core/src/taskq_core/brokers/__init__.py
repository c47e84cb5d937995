"""Brokers that ship with taskq's core.

:mod:`taskq_core.brokers.memory` holds
:class:`~taskq_core.brokers.memory.MemoryBroker`, the in-process broker behind
``memory://``: the whole broker contract in one process, for unit tests (a
worker on it runs tasks in-process). Other brokers live in their own
distributions (``taskq_redis``) and register through the ``taskq_register``
hook.
"""
