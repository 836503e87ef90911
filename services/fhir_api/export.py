"""FHIR Bulk Data export (async pattern): jobs run in worker threads and write one NDJSON file per type.

Jobs live in memory (one API process owns its jobs; run one process, or route a client's polling to the same
process). Files go to ``export_dir/<job id>/<Type>.ndjson`` and are removed on DELETE or after
``export_retention_s``. Each job reads one REPEATABLE READ snapshot, so all files describe the same moment,
``transactionTime`` in the manifest.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, Text, cast, func, select

from services.fhir_api.auth import Access
from services.fhir_api.errors import FhirError
from services.fhir_api.query import TABLE

C = TABLE.c

log = logging.getLogger("clinie.fhir_api.export")

JobState = Literal["running", "done", "error", "cancelled"]
_FLUSH_EVERY = 1000


@dataclass
class ExportJob:
    """One export. It is bound to the access context that started it: ``owner`` (token ``sub``/``client_id``)
    and ``patient_id`` (the patient compartment of the token's grants, None = every patient), for ``types``."""

    id: str
    owner: str | None
    request_url: str
    types: list[str]
    since: datetime | None
    patient_id: str | None  # patient-token compartment
    patient_level: bool  # Patient/$export: only resources in some patient's compartment
    requires_token: bool
    created: float = field(default_factory=time.time)
    state: JobState = "running"
    transaction_time: datetime | None = None
    progress: str = "queued"
    outputs: list[dict[str, Any]] = field(default_factory=list)  # {"type", "file", "count"}
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None


class ExportManager:
    def __init__(self, engine: Engine, export_dir: Path, max_concurrent: int, retention_s: int) -> None:
        self.engine = engine
        self.export_dir = export_dir
        self.max_concurrent = max_concurrent
        self.retention_s = retention_s
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.max_concurrent, thread_name_prefix="fhir-export")
        return self._executor

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.state == "running":
                job.cancel.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _job_dir(self, job_id: str) -> Path:
        return self.export_dir / job_id

    def _expire(self) -> None:
        now = time.time()
        with self._lock:
            old = [j for j in self._jobs.values() if j.state != "running" and now - j.created > self.retention_s]
            for j in old:
                del self._jobs[j.id]
        for j in old:
            shutil.rmtree(self._job_dir(j.id), ignore_errors=True)

    # ------------------------------------------------------------------------------------------ API

    def start(self, job: ExportJob) -> ExportJob:
        self._expire()
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.state == "running")
            if running >= self.max_concurrent:
                raise FhirError(429, "too many exports in progress; retry later", headers={"Retry-After": "60"})
            self._jobs[job.id] = job
        self._job_dir(job.id).mkdir(parents=True, exist_ok=True)
        job.future = self._pool().submit(self._run, job)
        log.info("export %s started: types=%s", job.id, ",".join(job.types))
        return job

    def get(self, job_id: str, access: Access) -> ExportJob:
        """The job, if ``access`` is the access context that started it (checked on every poll, download and
        delete): the same client (``sub``), still allowed to search every exported type, in the same patient
        compartment. A token of the same client for another patient, or without the scopes, gets a 403."""
        self._expire()
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.state == "cancelled":
            raise FhirError(404, "unknown or expired export job")
        if job.owner != access.subject:
            raise FhirError(403, "this export job belongs to another client")
        for rtype in job.types:
            grant = access.grant("search", rtype)  # 403 insufficient_scope when the scope is gone
            if grant.patient_id != job.patient_id:
                raise FhirError(403, "this export job was started with another patient context or scopes")
        return job

    def delete(self, job_id: str, access: Access) -> None:
        job = self.get(job_id, access)
        job.cancel.set()
        with self._lock:
            self._jobs.pop(job.id, None)
        if job.state != "running":
            shutil.rmtree(self._job_dir(job.id), ignore_errors=True)
        # a running job removes its own directory when it sees the cancel flag
        job.state = "cancelled"
        log.info("export %s deleted", job.id)

    def file_path(self, job: ExportJob, name: str) -> Path:
        for out in job.outputs:
            if out["file"] == name:
                return self._job_dir(job.id) / name
        raise FhirError(404, "unknown export file")

    # ------------------------------------------------------------------------------------------ worker

    def _conditions(self, job: ExportJob, rtype: str) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [C.resource_type == rtype]
        if job.since is not None:
            where.append(C.last_updated > job.since)
        if job.patient_id is not None:
            where.append(C.id == job.patient_id if rtype == "Patient" else C.patient_id == job.patient_id)
        elif job.patient_level and rtype != "Patient":
            where.append(C.patient_id.is_not(None))
        return where

    def _run(self, job: ExportJob) -> None:
        job_dir = self._job_dir(job.id)
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    job.transaction_time = conn.execute(select(func.now())).scalar_one()
                    for i, rtype in enumerate(job.types):
                        if job.cancel.is_set():
                            break
                        job.progress = f"exporting {rtype} ({i + 1}/{len(job.types)} types)"
                        name = f"{rtype}.ndjson"
                        part = job_dir / (name + ".part")
                        count = 0
                        stmt = select(cast(C.resource, Text)).select_from(TABLE).where(*self._conditions(job, rtype))
                        result = conn.execution_options(stream_results=True, yield_per=_FLUSH_EVERY).execute(stmt)
                        with part.open("w", encoding="utf-8") as fh:
                            for (text,) in result:
                                fh.write(text)
                                fh.write("\n")
                                count += 1
                                if count % _FLUSH_EVERY == 0:
                                    if job.cancel.is_set():
                                        break
                                    job.progress = (
                                        f"exporting {rtype} ({i + 1}/{len(job.types)} types, {count} resources)"
                                    )
                        result.close()
                        if count:
                            part.rename(job_dir / name)
                            job.outputs.append({"type": rtype, "file": name, "count": count})
                        else:
                            part.unlink(missing_ok=True)
            if job.cancel.is_set():
                job.state = "cancelled"
                shutil.rmtree(job_dir, ignore_errors=True)
                log.info("export %s cancelled", job.id)
                return
            job.progress = "done"
            job.state = "done"
            log.info(
                "export %s done: %d files, %d resources", job.id, len(job.outputs), sum(o["count"] for o in job.outputs)
            )
        except Exception as exc:  # the worker must never die silently; no details (may hold PHI) in the log
            job.state = "error"
            job.progress = "failed"
            shutil.rmtree(job_dir, ignore_errors=True)
            log.error("export %s failed: %s", job.id, type(exc).__name__)


def new_job_id() -> str:
    return uuid.uuid4().hex
