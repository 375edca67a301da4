"""The web UI (``covalent-core ui``, the ``ui`` extra): dispatches, live graphs, node
details and logs, cancel and redispatch, served on loopback behind a token.

:mod:`.server` starts it, :mod:`.app` answers requests, :mod:`.security` guards them,
:mod:`.data` reads what they show from the store; ``static/`` holds the pages, their scripts
and the vendored graph libraries (cytoscape with the dagre layout, built by
``frontend/build.sh``).
"""
