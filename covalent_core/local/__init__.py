"""The local executor: tasks run on this machine, in warm worker processes forked per task or
per pack of tasks, each contained by a cgroup of its own (see :mod:`.executor`)."""
