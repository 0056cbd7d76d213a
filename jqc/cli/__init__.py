# PYTHON_ARGCOMPLETE_OK
"""The ``jqc`` command line: operate queues from a shell.

Every command takes ``--url`` (default ``$JQC_REDIS_URL``, else the embedded backend, which lives only
as long as the command) and, where the output is data, ``--json``.

The top layer of jqc: it imports the library, nothing in the library imports it. One module per
command group, each with the ``add_parsers`` that registers its commands:

- :mod:`~jqc.cli.queues`: ``add``, ``stats``, ``jobs``, ``job``, ``retry``, ``pause``, ``resume``;
- :mod:`~jqc.cli.dlq`: ``dlq list|show|replay|purge``;
- :mod:`~jqc.cli.workers`: ``worker``, ``workers``;
- :mod:`~jqc.cli.coordinator`: ``metrics serve|show``, ``health``, ``doctor``, ``acl``;
- :mod:`~jqc.cli.autoscale`: ``pool``, ``autoscale``;
- :mod:`~jqc.cli.sim`: ``sim``;
- :mod:`~jqc.cli.demo`: ``demo``;

and beside them :mod:`~jqc.cli.command` (the parser and :func:`main`), :mod:`~jqc.cli.arguments`
(``--url``, ``--json``), :mod:`~jqc.cli.output` (tables, JSON) and :mod:`~jqc.cli.validators`
(the checks of option values).
"""

from jqc.cli.command import build_parser, main

__all__ = ["build_parser", "main"]
