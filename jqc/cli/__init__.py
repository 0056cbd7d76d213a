# PYTHON_ARGCOMPLETE_OK
"""The ``jqc`` command line: operate queues from a shell.

Every command takes ``--url`` (default ``$JQC_REDIS_URL``, else the embedded backend, which lives only
as long as the command) and, where the output is data, ``--json``. Output goes through ``rich``:
tables and colour on a terminal, plain text when piped. Bad input (a malformed URL, option or job
data) is one line on stderr and exit status 2; a refusal or a failed check exits 1.

The top layer of jqc: it imports the library, nothing in the library imports it. One module per
command group, each with the ``add_parsers`` that registers its commands:

- :mod:`~jqc.cli.queues`: ``add``, ``stats``, ``jobs``, ``job``, ``retry``, ``promote``, ``pause``, ``resume``;
- :mod:`~jqc.cli.dlq`: ``dlq list|show|replay|purge``;
- :mod:`~jqc.cli.schedules`: ``schedules list|add|remove|next``;
- :mod:`~jqc.cli.flows`: ``flow show``;
- :mod:`~jqc.cli.workers`: ``worker``, ``workers``;
- :mod:`~jqc.cli.coordinator`: ``metrics serve|show``, ``health``, ``doctor``, ``acl``;
- :mod:`~jqc.cli.autoscale`: ``pool``, ``autoscale``;
- :mod:`~jqc.cli.dashboard`: ``dashboard`` (the web dashboard, with uvicorn);
- :mod:`~jqc.cli.sim`: ``sim``;
- :mod:`~jqc.cli.demo`: ``demo``;
- :mod:`~jqc.cli.about`: ``version``;

and beside them :mod:`~jqc.cli.command` (the parser and :func:`main`), :mod:`~jqc.cli.arguments`
(``--url``, ``--json``, queue names that complete in the shell), :mod:`~jqc.cli.output` (rich
tables, JSON, times), :mod:`~jqc.cli.guards` (what state-changing commands refuse) and
:mod:`~jqc.cli.validators` (the checks of option values and job data).
"""

from jqc.cli.command import build_parser, main

__all__ = ["build_parser", "main"]
