"""Administer the tests' S3 server (ministack): run with its own venv's Python (.venv-s3, boto3 there).

``s3_admin.py ENDPOINT user`` prints a JSON access key of a new IAM user allowed everything (the root key
test/test is not signature-checked; a user's key is); ``s3_admin.py ENDPOINT bucket NAME KEY SECRET``
creates a bucket with that key.
"""

from __future__ import annotations

import json
import sys

import boto3

ROOT = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def main() -> None:
    endpoint, command, *args = sys.argv[1:]
    if command == "user":
        iam = boto3.client("iam", endpoint_url=endpoint, **ROOT)
        iam.create_user(UserName="upscaler")
        iam.put_user_policy(UserName="upscaler", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        key = iam.create_access_key(UserName="upscaler")["AccessKey"]
        print(json.dumps({"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
    elif command == "bucket":
        name, key, secret = args
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
        )
        s3.create_bucket(Bucket=name)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
