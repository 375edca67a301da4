"""The shared AWS pieces against moto: S3 transfer, errors with AWS's code, credentials."""

from __future__ import annotations

import asyncio

import pytest
from covalent_aws import S3, AWSConfig, AWSError

from covalent_core.errors import ExecutorError


def config(moto) -> AWSConfig:
    return AWSConfig(region="us-east-1", service_endpoints=(("s3", moto.url),))


def test_s3_put_get_and_delete_by_prefix(moto):
    moto.client("s3").create_bucket(Bucket="shared-tests")
    s3 = S3(config(moto), "shared-tests")

    async def round_trip() -> tuple[bytes | None, bytes | None]:
        await s3.check_bucket()
        await s3.put("job/1/payload", b"abc")
        await s3.put("job/1/outcome", b"xyz")
        got = await s3.get("job/1/payload")
        await s3.delete_prefix("job/1/")
        return got, await s3.get("job/1/outcome")

    got, gone = asyncio.run(round_trip())
    assert got == b"abc" and gone is None


def test_a_missing_bucket_is_an_executor_error_that_says_what_to_do(moto):
    s3 = S3(config(moto), "no-such-bucket-here")
    with pytest.raises(AWSError, match="does not exist: create it or fix s3_bucket_name") as info:
        asyncio.run(s3.check_bucket())
    assert isinstance(info.value, ExecutorError)


def test_an_explicit_credentials_file_must_exist(tmp_path):
    with pytest.raises(AWSError, match="does not exist"):
        AWSConfig(credentials=str(tmp_path / "nope")).session()
    path = tmp_path / "credentials"
    path.write_text("[other]\naws_access_key_id = a\naws_secret_access_key = b\n")
    with pytest.raises(AWSError, match=r"has no \[default\] profile"):
        AWSConfig(credentials=str(path)).session()
    session = AWSConfig(credentials=str(path), profile="other", region="us-east-1").session()
    assert session.get_credentials().access_key == "a"
