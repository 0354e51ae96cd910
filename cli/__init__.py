"""The `approval-gate` command (DESIGN §2).

``sandbox`` and ``demo`` delegate to the local sandbox (``sandbox.run``, ``sandbox.demo``);
the commands that work against AWS come here too. Nothing in the domain (``approval_gate``)
or the sandbox imports this package: it only parses arguments and delegates.
"""
