"""Real servers for covalent-core's executor tests, started by the tests on 127.0.0.1.

A pytest plugin (registered through the ``pytest11`` entry point, so installing this
package is all it takes) with session fixtures: ``sshd`` (OpenSSH with its own keys and
known_hosts), ``cluster`` (a single-node Slurm with munge), ``aws_credentials`` (dummy keys
for moto), ``covalent_private_store`` (a private covalent-core data directory, service and
temporary directory). The classes behind them (:class:`~.sshd.SSHServer`,
:class:`~.slurm.SlurmCluster`, :class:`~.aws.MotoServer`, the AWS Batch and Braket test
doubles) can be used directly, e.g. by benchmarks. ``covalent-servers-install`` installs
the Debian packages they need (as root).
"""

from __future__ import annotations

__version__ = "0.1.0"
