"""What an AWS Batch job runs: ``python -m covalent_awsbatch.container s3://BUCKET/PREFIX``.

Downloads ``PREFIX/payload``, runs the task (covalent-core's runner), uploads
``PREFIX/outcome``: the result, or the error with its traceback. The task's output goes to
the container's stdout and stderr, which Batch sends to CloudWatch Logs. The image needs
covalent-awsbatch installed; ``COVALENT_S3_ENDPOINT_URL`` points at a private S3 endpoint.
"""

from __future__ import annotations

import os
import sys

import boto3

from covalent_core.runner import execute


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("s3://"):
        print("usage: python -m covalent_awsbatch.container s3://BUCKET/PREFIX", file=sys.stderr)
        return 2
    bucket, _, prefix = argv[0][len("s3://") :].partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ.get("COVALENT_S3_ENDPOINT_URL") or None)
    payload = s3.get_object(Bucket=bucket, Key=f"{prefix}/payload")["Body"].read()
    outcome = execute(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/outcome", Body=outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
