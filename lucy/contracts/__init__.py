"""The contracts the kernel and several capabilities share. Pure data: nothing here does I/O or
reads the environment, so workflows may import it.

* :mod:`~lucy.contracts.ids`: names, queues, search attributes, workflow ids, statuses, sources
  and intents (the enumerations the database stores);
* :mod:`~lucy.contracts.risk`: the risk scale tools declare and approvals record;
* :mod:`~lucy.contracts.llm`: model calls; :mod:`~lucy.contracts.slack`: messages to post and
  update; :mod:`~lucy.contracts.errors`: the error types every activity raises.

What belongs to one capability lives in that capability's ``contracts`` (for example
:mod:`capabilities.task.contracts.task`, :mod:`capabilities.approvals.contracts`). Import each
name from its home: this package re-exports nothing.
"""
