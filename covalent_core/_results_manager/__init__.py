"""Results, laid out as Covalent's ``covalent._results_manager``: :class:`~.result.Result`
and the nodes, reports and lists read from the store."""
