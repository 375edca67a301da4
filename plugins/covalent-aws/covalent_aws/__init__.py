"""The AWS pieces covalent-awsbatch and covalent-braket share: sessions and clients, clear
errors, S3 transfer. A library: installing it registers no executor.

Clients retry what AWS says to retry (throttling, 5xx) with botocore's standard backoff;
errors that retrying cannot fix are turned into messages that say what to do.
"""

from __future__ import annotations

import asyncio
import configparser
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from covalent_core.errors import ExecutorError

if TYPE_CHECKING:
    import boto3

logger = logging.getLogger(__name__)


def errors() -> Any:
    """botocore's exceptions, imported at first use (with boto3), not when the plugin is
    discovered: every command lists the plugins, and boto3 takes a tenth of a second."""
    import botocore.exceptions

    return botocore.exceptions


class AWSError(ExecutorError):
    """An AWS call failed; the message says what was wrong and what to do.

    ``command`` is the call, ``code`` AWS's error code, ``aws_message`` AWS's own message.
    """

    def __init__(
        self,
        message: str,
        *,
        command: str | None = None,
        code: str | None = None,
        aws_message: str = "",
    ) -> None:
        super().__init__(message, command=command, code=code)
        self.aws_message = aws_message


@dataclass(frozen=True)
class AWSConfig:
    """Where and as whom to call AWS."""

    region: str | None = None
    profile: str | None = None
    credentials: str | None = None
    endpoint_url: str | None = None
    service_endpoints: tuple[tuple[str, str], ...] = ()
    max_attempts: int = 8

    def session(self) -> boto3.Session:
        """A boto3 session from the profile and credentials file (default chain otherwise)."""
        import boto3

        if not self.credentials:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        # A credentials file given explicitly wins over the environment's keys.
        path = os.path.expanduser(self.credentials)
        parser = configparser.ConfigParser()
        if not parser.read(path):
            raise AWSError(f"credentials file {self.credentials!r} does not exist")
        section = self.profile or "default"
        if section not in parser:
            raise AWSError(f"credentials file {self.credentials!r} has no [{section}] profile")
        entry = parser[section]
        return boto3.Session(
            aws_access_key_id=entry.get("aws_access_key_id"),
            aws_secret_access_key=entry.get("aws_secret_access_key"),
            aws_session_token=entry.get("aws_session_token"),
            region_name=self.region,
        )

    def client(self, service: str) -> Any:
        """A client for ``service`` that retries throttling with backoff (made once, shared:
        boto3 clients are thread-safe and slow to create)."""
        key = (self, service)
        with _clients_lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = self._new_client(service)
            return found

    def _new_client(self, service: str) -> Any:
        from botocore.config import Config

        endpoint = dict(self.service_endpoints).get(service, self.endpoint_url)
        config = Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            connect_timeout=10,
            read_timeout=60,
        )
        return self.session().client(service, endpoint_url=endpoint, config=config)


_clients: dict[tuple[AWSConfig, str], Any] = {}
_clients_lock = threading.Lock()

ADVICE = {
    "NoSuchBucket": "the S3 bucket does not exist: create it or fix s3_bucket_name",
    "AccessDenied": "access denied: the credentials lack the permission named above",
    "AccessDeniedException": "access denied: the credentials lack the permission named above",
    "ExpiredToken": "the credentials have expired: refresh them (e.g. `aws sso login`)",
    "ExpiredTokenException": "the credentials have expired: refresh them (e.g. `aws sso login`)",
    "InvalidClientTokenId": "the access key is not valid: check the profile or credentials",
    "UnrecognizedClientException": "the access key is not valid: check the profile",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "TooManyRequestsException": "AWS kept throttling the calls; try again later",
    "ThrottlingException": "AWS kept throttling the calls; try again later",
}


def explain(exc: BaseException, what: str) -> AWSError:
    """An :class:`AWSError` naming the call and what to do about ``exc``."""
    if isinstance(exc, errors().ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        advice = ADVICE.get(code)
        text = f"{what} failed: {code}: {message}" + (f" ({advice})" if advice else "")
        return AWSError(text, command=what, code=code, aws_message=message)
    if isinstance(exc, errors().NoCredentialsError):
        return AWSError(f"{what} failed: no AWS credentials found (set profile or credentials)")
    if isinstance(exc, errors().EndpointConnectionError):
        return AWSError(f"{what} failed: cannot reach {exc.kwargs.get('endpoint_url')}")
    return AWSError(f"{what} failed: {type(exc).__name__}: {exc}")


async def call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run a blocking boto3 call in a thread; errors become :class:`AWSError`."""
    try:
        return await asyncio.to_thread(function, **kwargs)
    except (errors().ClientError, errors().BotoCoreError) as exc:
        raise explain(exc, what) from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (or '')."""
    if isinstance(exc, errors().ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3:
    """The few S3 operations the executors need, with clear errors."""

    def __init__(self, config: AWSConfig, bucket: str) -> None:
        self.client = config.client("s3")
        self.bucket = bucket

    async def check_bucket(self) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except errors().ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise AWSError(
                    f"S3 bucket {self.bucket!r} does not exist: create it or fix s3_bucket_name"
                ) from None
            raise explain(exc, f"checking S3 bucket {self.bucket!r}") from None
        except errors().BotoCoreError as exc:
            raise explain(exc, f"checking S3 bucket {self.bucket!r}") from None

    async def put(self, key: str, data: bytes) -> None:
        await call(
            f"uploading s3://{self.bucket}/{key}",
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
        )

    async def get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except errors().ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            return body.read()

        return await call(f"downloading s3://{self.bucket}/{key}", read)

    async def delete_prefix(self, prefix: str) -> None:
        def delete() -> None:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

        await call(f"deleting s3://{self.bucket}/{prefix}", delete)

    async def keys(self, prefix: str) -> list[str]:
        def listing() -> list[str]:
            paginator = self.client.get_paginator("list_objects_v2")
            return [
                o["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for o in page.get("Contents", [])
            ]

        return await call(f"listing s3://{self.bucket}/{prefix}", listing)
