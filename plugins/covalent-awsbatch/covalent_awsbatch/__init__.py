"""covalent-awsbatch: run covalent-core tasks as AWS Batch jobs, and terminate them on cancel.

    from covalent_awsbatch import AWSBatchExecutor

    @ct.electron(executor=AWSBatchExecutor(s3_bucket_name="my-bucket", batch_queue="q",
                                           container_image_uri="...:latest", region="eu-west-1"))

The AWS pieces shared with covalent-braket are in the library covalent-aws (``covalent_aws``).
"""

from __future__ import annotations

from covalent_core.sdk import Executor, hookimpl

from .executor import AWSBatchExecutor

__version__ = "0.1.0"


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The executors this plugin provides."""
    return [AWSBatchExecutor]


__all__ = ["AWSBatchExecutor"]
