"""The `schedcp` command line: ``main`` dispatches (``schedcp.cli.main``), one module per group
of commands (``helper``, ``agent``, ``policies``, ``vm``; ``schedcp.demo`` registers its own),
``args`` holds what they share: the parser, the argument types and the one ``UsageError``.

Importing this package imports none of the commands, so one can be run alone.
"""
