"""A local S3-compatible server (moto's, PyPI ``moto[server]``, a dev dependency) for Tansu's ``s3://`` storage.

Test and fault-suite tooling: with ``TansuBroker(storage=S3Server.storage_url(bucket), storage_env=s3.env())``
topics, messages and committed offsets live in the S3 server's memory, so they survive a kill -9 of the broker
(not of the S3 server). Never a production store: moto keeps everything in memory and checks no credentials.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from services.stack.ports import LOOPBACK, free_port
from services.stack.process import ManagedProcess

#: fixed dummy credentials: moto accepts any, Tansu's S3 client insists on having some
_ENV = {"AWS_ACCESS_KEY_ID": "clinie-test", "AWS_SECRET_ACCESS_KEY": "clinie-test", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true"}


def s3_server_available() -> bool:
    """True when moto's server is installed (``pip install 'moto[server]'``, the dev extra)."""
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


class S3Server(ManagedProcess):
    """moto's S3 server on ``127.0.0.1:port``, started and stopped by us."""

    name = "s3"
    default_start_timeout = 60.0  # moto imports a lot; slow on a loaded machine
    default_stop_timeout = 10.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir)
        self.port = port if port is not None else free_port()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]

    def probe_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1.0) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (an existing one is kept)."""
        request = urllib.request.Request(f"{self.url}/{bucket}", method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=10.0):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # BucketAlreadyOwnedByYou / BucketAlreadyExists
                raise self.error(f"creating bucket {bucket}: HTTP {exc.code}") from exc

    def env(self) -> Mapping[str, str]:
        """What Tansu's S3 client needs to reach this server."""
        return {**_ENV, "AWS_ENDPOINT": self.url}

    @staticmethod
    def storage_url(bucket: str) -> str:
        return f"s3://{bucket}/"
