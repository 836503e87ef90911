"""Launchers for the real local components the demo and integration tests start and stop themselves.

* :class:`~services.stack.kafka.TansuBroker` – Kafka-protocol broker (Tansu, memory storage)
* :class:`~services.stack.triton.TritonServer` – NVIDIA tritonserver bundled in nvidia-pytriton, on CPU
* :class:`~services.stack.postgres.PostgresServer` – external PostgreSQL (URL) or embedded (pgserver)
* :class:`~services.stack.local.LocalStack` – all three; plus detached ``stack_up_detached`` / ``stack_down``

Client libraries (aiokafka, psycopg, pgserver) are imported only when used.
"""

from services.stack.kafka import TansuBroker, create_topics, tansu_available
from services.stack.local import LocalStack, stack_down, stack_status, stack_up_detached
from services.stack.ports import free_port, wait_for_tcp
from services.stack.postgres import PostgresServer
from services.stack.process import ManagedProcess, StackError
from services.stack.triton import TritonServer, tritonserver_available

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
