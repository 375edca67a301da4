"""File transfers (``ct.fs``), laid out as Covalent's ``covalent._file_transfer``: files,
folders and transfers (:mod:`.file_transfer`), their strategies (:mod:`.strategies`), and
what a transfer runs where the task runs (:mod:`.transfer_calls`)."""
