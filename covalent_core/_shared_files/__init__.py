"""Covalent's ``covalent._shared_files``, where user code finds Covalent's exceptions."""
