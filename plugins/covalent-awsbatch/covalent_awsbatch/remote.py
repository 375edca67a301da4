"""What an AWS Batch job runs: a self-contained Python program given with ``python -c``.

It downloads ``PREFIX/payload`` from S3, runs the task with covalent-core's runner (its
source is part of the program), and uploads ``PREFIX/outcome``: the result, or the error
with its traceback. The task's output goes to the container's stdout and stderr, which Batch
sends to CloudWatch Logs. The image needs only Python with boto3 and cloudpickle, so
Covalent's own executor image works; ``COVALENT_S3_ENDPOINT_URL`` points at a private S3
endpoint. ``python -m covalent_awsbatch.remote s3://BUCKET/PREFIX`` runs the same.
"""

from __future__ import annotations

import sys

from covalent_core.sdk import RUNNER_PATH

# Covalent's executor base image (Python, boto3, cloudpickle): the default image.
DEFAULT_IMAGE = "public.ecr.aws/covalent/covalent-executor-base:stable"

_MAIN = """

def _container_main(argv):
    import os
    import boto3

    if len(argv) != 1 or not argv[0].startswith("s3://"):
        print("usage: python -c PROGRAM s3://BUCKET/PREFIX", file=sys.stderr)
        return 2
    bucket, _, prefix = argv[0][len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ.get("COVALENT_S3_ENDPOINT_URL") or None)
    payload = s3.get_object(Bucket=bucket, Key=prefix + "/payload")["Body"].read()
    outcome = execute(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    s3.put_object(Bucket=bucket, Key=prefix + "/outcome", Body=outcome)
    return 0


sys.exit(_container_main(sys.argv[1:]))
"""


def program() -> str:
    """The program a job runs: the runner's functions, then the S3 round trip."""
    source = RUNNER_PATH.read_text()
    marker = '\nif __name__ == "__main__":'
    if marker not in source:
        raise RuntimeError("covalent_core's runner changed shape: its main guard is missing")
    return source.split(marker, 1)[0] + _MAIN


def command(python: str, location: str) -> list[str]:
    """The container command for the task stored at ``location`` (``s3://BUCKET/PREFIX``)."""
    return [python, "-c", program(), location]


if __name__ == "__main__":
    exec(compile(program(), "covalent_awsbatch.remote", "exec"), {"__name__": "job"})
    sys.exit(0)
