"""Launchers for the real local components the demo and integration tests start and stop themselves.

* :class:`~clinie.stack.kafka.TansuBroker` – Kafka-protocol broker (Tansu, memory storage)
* :class:`~clinie.stack.triton.TritonServer` – NVIDIA tritonserver bundled in nvidia-pytriton, on CPU
* :class:`~clinie.stack.postgres.PostgresServer` – external PostgreSQL (URL) or embedded (pgserver)
* :class:`~clinie.stack.local.LocalStack` – all three; plus detached ``stack_up_detached`` / ``stack_down``

Client libraries (aiokafka, psycopg, pgserver) are imported only when used.
"""

from clinie.stack.kafka import TansuBroker, create_topics, tansu_available
from clinie.stack.local import LocalStack, stack_down, stack_status, stack_up_detached
from clinie.stack.ports import free_port, wait_for_tcp
from clinie.stack.postgres import PostgresServer
from clinie.stack.process import ManagedProcess, StackError
from clinie.stack.triton import TritonServer, tritonserver_available

__all__ = [
    "LocalStack",
    "ManagedProcess",
    "PostgresServer",
    "StackError",
    "TansuBroker",
    "TritonServer",
    "create_topics",
    "free_port",
    "stack_down",
    "stack_status",
    "stack_up_detached",
    "tansu_available",
    "tritonserver_available",
    "wait_for_tcp",
]
