"""Latency of typical FHIR searches against a large ``fhir_resources`` table (no assertions: this only measures).

    .venv/bin/python benchmarks/api_search.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/clinie_bench --create-db --drop-db \\
        --size 1000000 --patients 20000 --requests 200

1. Seeds ``--size`` synthetic resources with PostgreSQL COPY (indexes dropped during the load, rebuilt after):
   ``--patients`` Patient stubs; notes spread over the patients with a skewed (log-normal) notes-per-patient
   distribution; per note one Provenance, ~3 Conditions and ~1.5 MedicationStatements; 300 distinct condition
   concepts and 150 medication concepts with Zipf-like frequencies; recorded dates over 10 years. Then ANALYZE.
2. Starts the API (``uvicorn services.fhir_api.app:app_from_env``, auth on, RS256 tokens) as a subprocess.
3. Sends ``--requests`` requests per query type over one keep-alive HTTP connection, sequentially, after a
   warm-up, and prints a markdown table of p50/p95/p99 latencies (ms, client side, including JSON transfer).

The data are synthetic (random ids, made-up codes); nothing here is PHI.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from clinie.fhir.extensions import NOTE_EVIDENCE_URL as EVIDENCE
from clinie.fhir.systems import CLINICAL_STATUS_SYSTEM as CLIN
from clinie.fhir.systems import RXNORM, SNOMED
from clinie.fhir.systems import VERIFICATION_STATUS_SYSTEM as VER
from clinie.storage.models import Base, FhirResource
from services.fhir_api.paging import encode_cursor

REPO = Path(__file__).resolve().parents[1]
MODEL = "clinie-bench-model-1"
COLUMNS = [c.name for c in FhirResource.__table__.columns]

_CONDITIONS = [
    "type 2 diabetes mellitus",
    "essential hypertension",
    "hyperlipidemia",
    "asthma",
    "copd",
    "chronic kidney disease",
    "atrial fibrillation",
    "heart failure",
    "coronary artery disease",
    "obesity",
    "major depressive disorder",
    "generalized anxiety disorder",
    "hypothyroidism",
    "osteoarthritis",
    "rheumatoid arthritis",
    "gastroesophageal reflux disease",
    "migraine",
    "epilepsy",
    "anemia",
    "gout",
    "osteoporosis",
    "sleep apnea",
    "psoriasis",
    "atopic dermatitis",
    "urinary tract infection",
    "pneumonia",
    "cellulitis",
    "sepsis",
    "deep vein thrombosis",
    "pulmonary embolism",
    "stroke",
    "transient ischemic attack",
    "peripheral neuropathy",
    "diabetic retinopathy",
    "glaucoma",
    "cataract",
    "benign prostatic hyperplasia",
    "irritable bowel syndrome",
    "crohn disease",
    "ulcerative colitis",
    "cirrhosis",
    "hepatitis c",
    "hiv infection",
    "lung cancer",
    "breast cancer",
    "prostate cancer",
    "colorectal cancer",
    "melanoma",
    "dementia",
    "parkinson disease",
    "multiple sclerosis",
    "schizophrenia",
    "bipolar disorder",
    "alcohol use disorder",
    "tobacco use disorder",
    "chronic low back pain",
    "fibromyalgia",
    "lupus",
    "type 1 diabetes mellitus",
    "hypertensive heart disease",
]
_QUALIFIERS = ["", "acute ", "chronic ", "history of ", "suspected "]
_DRUGS = [
    "metformin",
    "lisinopril",
    "atorvastatin",
    "amlodipine",
    "metoprolol",
    "omeprazole",
    "simvastatin",
    "losartan",
    "albuterol",
    "gabapentin",
    "hydrochlorothiazide",
    "sertraline",
    "furosemide",
    "levothyroxine",
    "prednisone",
    "insulin glargine",
    "apixaban",
    "warfarin",
    "clopidogrel",
    "tramadol",
    "escitalopram",
    "montelukast",
    "rosuvastatin",
    "pantoprazole",
    "fluoxetine",
    "bupropion",
    "trazodone",
    "carvedilol",
    "spironolactone",
    "tamsulosin",
    "duloxetine",
    "citalopram",
    "meloxicam",
    "allopurinol",
    "venlafaxine",
    "lamotrigine",
    "quetiapine",
    "aripiprazole",
    "donepezil",
    "methotrexate",
    "hydroxychloroquine",
    "empagliflozin",
    "semaglutide",
    "sitagliptin",
    "glipizide",
    "valsartan",
    "diltiazem",
    "digoxin",
    "amiodarone",
    "enoxaparin",
]
_STRENGTHS = ["5 mg", "10 mg", "500 mg"]


@dataclass(frozen=True)
class Concept:
    text: str
    system: str
    code: str


def _concepts() -> tuple[list[Concept], list[Concept]]:
    conds = [
        Concept(q + c, SNOMED, str(100000 + 7919 * i))
        for i, (c, q) in enumerate((c, q) for c in _CONDITIONS for q in _QUALIFIERS)
    ]
    meds = [
        Concept(f"{d} {s}", RXNORM, str(200000 + 104729 * i))
        for i, (d, s) in enumerate((d, s) for d in _DRUGS for s in _STRENGTHS)
    ]
    return conds, meds


def _hid(*parts: object) -> str:
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def _iso(d: datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def generate(size: int, patients: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """Yield COPY rows (in COLUMNS order) until ``size`` rows were produced."""
    rng = random.Random(seed)
    conds, meds = _concepts()
    cw = [1 / (i + 1) ** 0.9 for i in range(len(conds))]
    mw = [1 / (i + 1) ** 0.9 for i in range(len(meds))]
    rng.shuffle(cw)
    rng.shuffle(mw)
    ccum, mcum = list(itertools.accumulate(cw)), list(itertools.accumulate(mw))
    start = datetime(2015, 1, 1, tzinfo=UTC)
    span = (datetime(2025, 1, 1, tzinfo=UTC) - start).total_seconds()
    pids = [_hid("patient", i) for i in range(patients)]
    pcum = list(itertools.accumulate(rng.lognormvariate(0, 1) for _ in range(patients)))
    loaded = datetime(2025, 6, 1, tzinfo=UTC)
    produced = 0

    res: dict[str, Any]

    def row(**kw: Any) -> tuple[Any, ...]:
        return tuple(kw.get(c) for c in COLUMNS)

    for pid in pids:
        if produced >= size:
            return
        res = {"resourceType": "Patient", "id": pid, "meta": {"versionId": "1", "lastUpdated": _iso(loaded)}}
        yield row(
            resource_type="Patient",
            id=pid,
            version_id=1,
            last_updated=loaded,
            patient_id=pid,
            resource=json.dumps(res, separators=(",", ":")),
        )
        produced += 1
    note = 0
    while produced < size:
        note += 1
        pid = rng.choices(pids, cum_weights=pcum)[0]
        doc = _hid("doc", note)
        enc = _hid("enc", note)
        when = start + timedelta(seconds=rng.random() * span)
        processed = when + timedelta(days=rng.randint(0, 30))
        meta = {"versionId": "1", "lastUpdated": _iso(processed)}
        evidence = [
            {
                "url": EVIDENCE,
                "extension": [{"url": "document", "valueReference": {"reference": f"DocumentReference/{doc}"}}],
            }
        ]
        common = dict(
            version_id=1,
            last_updated=processed,
            patient_id=pid,
            encounter_id=enc,
            source_document_id=doc,
            source_document_version="1",
            model_version=MODEL,
        )
        targets: list[str] = []
        for k in range(max(1, min(8, int(rng.expovariate(1 / 3)) + 1))):
            c = rng.choices(conds, cum_weights=ccum)[0]
            cid = _hid("cond", note, k)
            status = rng.choices(["active", "resolved", "inactive"], [6, 3, 1])[0]
            ver = rng.choices(["confirmed", "unconfirmed", "refuted"], [7, 2, 1])[0]
            onset = when - timedelta(days=rng.randint(0, 3650)) if rng.random() < 0.5 else None
            res = {
                "resourceType": "Condition",
                "id": cid,
                "meta": meta,
                "extension": evidence,
                "clinicalStatus": {"coding": [{"system": CLIN, "code": status}]},
                "verificationStatus": {"coding": [{"system": VER, "code": ver}]},
                "code": {"coding": [{"system": c.system, "code": c.code, "display": c.text}], "text": c.text},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{enc}"},
                "recordedDate": _iso(when),
            }
            if onset is not None:
                res["onsetDateTime"] = onset.date().isoformat()
            yield row(
                resource_type="Condition",
                id=cid,
                code_text=c.text,
                codes=[f"{c.system}|{c.code}", c.code],
                status=status,
                verification_status=ver,
                recorded_date=when,
                effective_start=(datetime(onset.year, onset.month, onset.day, tzinfo=UTC) if onset else None),
                effective_end=(
                    datetime(onset.year, onset.month, onset.day, 23, 59, 59, 999999, tzinfo=UTC) if onset else None
                ),
                resource=json.dumps(res, separators=(",", ":")),
                **common,
            )
            targets.append(f"Condition/{cid}")
            produced += 1
        for k in range(int(rng.expovariate(1 / 1.5))):
            m = rng.choices(meds, cum_weights=mcum)[0]
            mid = _hid("med", note, k)
            status = rng.choices(["active", "completed", "stopped"], [6, 3, 1])[0]
            res = {
                "resourceType": "MedicationStatement",
                "id": mid,
                "meta": meta,
                "extension": evidence,
                "status": status,
                "medicationCodeableConcept": {"coding": [{"system": m.system, "code": m.code}], "text": m.text},
                "subject": {"reference": f"Patient/{pid}"},
                "context": {"reference": f"Encounter/{enc}"},
                "effectiveDateTime": _iso(when),
                "dateAsserted": _iso(when),
                "derivedFrom": [{"reference": f"DocumentReference/{doc}"}],
            }
            yield row(
                resource_type="MedicationStatement",
                id=mid,
                code_text=m.text,
                codes=[f"{m.system}|{m.code}", m.code],
                status=status,
                recorded_date=when,
                effective_start=when,
                effective_end=when,
                resource=json.dumps(res, separators=(",", ":")),
                **common,
            )
            targets.append(f"MedicationStatement/{mid}")
            produced += 1
        prov = _hid("prov", note)
        res = {
            "resourceType": "Provenance",
            "id": prov,
            "meta": meta,
            "target": [{"reference": t} for t in targets],
            "recorded": _iso(processed),
            "agent": [{"who": {"display": MODEL}}],
            "entity": [{"role": "source", "what": {"reference": f"DocumentReference/{doc}"}}],
        }
        yield row(
            resource_type="Provenance",
            id=prov,
            recorded_date=processed,
            targets=targets,
            resource=json.dumps(res, separators=(",", ":")),
            **common,
        )
        produced += 1


def seed(url: str, size: int, patients: int, seed_value: int) -> dict[str, float]:
    engine = create_engine(url)
    table = Base.metadata.tables["fhir_resources"]
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for idx in table.indexes:
            idx.drop(conn)
    engine.dispose()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    t0 = time.perf_counter()
    n = 0
    with psycopg.connect(conninfo) as pg, pg.cursor() as cur:
        with cur.copy(f"COPY fhir_resources ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for r in generate(size, patients, seed_value):
                copy.write_row(r)
                n += 1
                if n % 100_000 == 0:
                    print(f"  copied {n:,} rows ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        pg.commit()
    t_copy = time.perf_counter() - t0
    t1 = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        for idx in table.indexes:
            idx.create(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE fhir_resources")
        total_bytes = conn.exec_driver_sql("SELECT pg_total_relation_size('fhir_resources')").scalar_one()
    engine.dispose()
    return {"rows": n, "copy_s": t_copy, "index_s": time.perf_counter() - t1, "bytes": float(total_bytes)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sample:
    patients: list[str]  # uniform sample of patients
    patient_codes: list[tuple[str, str]]  # (patient, system|code) of existing Conditions
    texts: list[str]
    docs: list[str]
    condition_ids: list[str]


def sample_inputs(url: str, seed_value: int) -> Sample:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT patient_id, codes[1], code_text, source_document_id, id FROM fhir_resources "
            "TABLESAMPLE SYSTEM (2) REPEATABLE (%(s)s) WHERE resource_type = 'Condition' LIMIT 2000",
            {"s": seed_value},
        ).all()
        patients = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT id FROM fhir_resources WHERE resource_type = 'Patient' ORDER BY id LIMIT 2000"
            ).all()
        ]
    engine.dispose()
    rng = random.Random(seed_value)
    # code:text probes: a word of a real concept text (substring search)
    texts = [rng.choice(r[2].split()) for r in rows]
    return Sample(patients, [(r[0], r[1]) for r in rows], texts, [r[3] for r in rows], [r[4] for r in rows])


def make_keys() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def token(private: bytes, scope: str, patient: str | None = None) -> str:
    claims: dict[str, Any] = {"sub": "bench", "aud": "clinie-bench", "exp": int(time.time()) + 7200, "scope": scope}
    if patient:
        claims["patient"] = patient
    return jwt.encode(claims, private, algorithm="RS256")


Request = tuple[str, list[tuple[str, str | int | float | bool | None]], str]
Query = Callable[[random.Random], Request]


def queries(s: Sample, private: bytes) -> dict[str, Query]:
    system = token(private, "system/*.read")
    patient_tokens: dict[str, str] = {}

    def ptoken(pid: str) -> str:
        if pid not in patient_tokens:
            patient_tokens[pid] = token(private, "patient/*.read", pid)
        return patient_tokens[pid]

    def week(rng: random.Random) -> tuple[str, str]:
        d = datetime(2015, 1, 1) + timedelta(days=rng.randint(0, 3640))
        return d.date().isoformat(), (d + timedelta(days=7)).date().isoformat()

    def q_patient_code(rng: random.Random) -> Request:
        pid, code = rng.choice(s.patient_codes)
        return "/Condition", list({"patient": pid, "code": code}.items()), system

    def q_patient_all(rng: random.Random) -> Request:
        pid = rng.choice(s.patients)
        return "/Condition", list({"_count": "50"}.items()), ptoken(pid)

    def q_patient_text(rng: random.Random) -> Request:
        pid = rng.choice(s.patients)
        return "/Condition", list({"code:text": rng.choice(s.texts)}.items()), ptoken(pid)

    def q_patient_meds(rng: random.Random) -> Request:
        pid = rng.choice(s.patients)
        return "/MedicationStatement", list({"status": "active", "_sort": "-effective"}.items()), ptoken(pid)

    def q_patient_revinclude(rng: random.Random) -> Request:
        pid = rng.choice(s.patients)
        return "/Condition", list({"patient": pid, "_revinclude": "Provenance:target"}.items()), system

    def q_text(rng: random.Random) -> Request:
        return "/Condition", list({"code:text": rng.choice(s.texts), "_count": "50"}.items()), system

    def q_text_nototal(rng: random.Random) -> Request:
        return "/Condition", list({"code:text": rng.choice(s.texts), "_count": "50", "_total": "none"}.items()), system

    def q_dates(rng: random.Random) -> Request:
        lo, hi = week(rng)
        return "/Condition", [("recorded-date", f"ge{lo}"), ("recorded-date", f"lt{hi}"), ("_count", "50")], system

    def q_code_dates(rng: random.Random) -> Request:
        lo, _ = week(rng)
        code = rng.choice(s.patient_codes)[1]
        month = lo[:7]
        return "/Condition", [("code", code), ("recorded-date", month), ("_count", "50")], system

    def q_source(rng: random.Random) -> Request:
        return "/Condition", list({"source-document": rng.choice(s.docs)}.items()), system

    def q_page(rng: random.Random) -> Request:
        after = f"{rng.getrandbits(128):032x}"  # ids are 32 hex digits: a page from a random place
        cursor = encode_cursor("next", "_id", [after])
        return "/Condition", [("_count", "50"), ("_total", "none"), ("_cursor", cursor)], system

    def q_read(rng: random.Random) -> Request:
        return f"/Condition/{rng.choice(s.condition_ids)}", list({}.items()), system

    return {
        "read Condition/{id}": q_read,
        "patient + code (system token)": q_patient_code,
        "patient-scoped token: all Conditions (_count=50)": q_patient_all,
        "patient-scoped token: code:text": q_patient_text,
        "patient-scoped token: active MedicationStatements, _sort=-effective": q_patient_meds,
        "patient + _revinclude=Provenance:target": q_patient_revinclude,
        "source-document (one note)": q_source,
        "code:text substring, all patients (_count=50, with total)": q_text,
        "code:text substring, all patients (_total=none)": q_text_nototal,
        "recorded-date one-week range (_count=50)": q_dates,
        "code + recorded-date one month (_count=50)": q_code_dates,
        "keyset page from a random place, all Conditions (_total=none)": q_page,
    }


def measure(base: str, qs: dict[str, Query], n: int, warmup: int, seed_value: int) -> list[dict[str, Any]]:
    results = []
    with httpx.Client(base_url=base, timeout=120) as http:
        for name, q in qs.items():
            rng = random.Random(seed_value)
            for _ in range(warmup):
                path, params, tok = q(rng)
                http.get(path, params=params, headers={"Authorization": f"Bearer {tok}"})
            lat: list[float] = []
            hits: list[int] = []
            for _ in range(n):
                path, params, tok = q(rng)
                t0 = time.perf_counter()
                r = http.get(path, params=params, headers={"Authorization": f"Bearer {tok}"})
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {r.status_code}: {r.text[:300]}")
                body = r.json()
                hits.append(body.get("total", len(body.get("entry", []))) if body["resourceType"] == "Bundle" else 1)
            lat.sort()
            results.append(
                {
                    "query": name,
                    "n": n,
                    "p50": statistics.median(lat),
                    "p95": lat[min(n - 1, math.ceil(0.95 * n) - 1)],
                    "p99": lat[min(n - 1, math.ceil(0.99 * n) - 1)],
                    "max": lat[-1],
                    "hits": statistics.mean(hits),
                }
            )
            print(f"  {name}: p50 {results[-1]['p50']:.1f} ms, p95 {results[-1]['p95']:.1f} ms", file=sys.stderr)
    return results


def time_export(base: str, tok: str) -> dict[str, Any]:
    """Kick off GET /$export, poll until done, download every file; delete the job."""
    headers = {"Authorization": f"Bearer {tok}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        t0 = time.perf_counter()
        r = http.get("/$export", headers={"Prefer": "respond-async"})
        r.raise_for_status()
        status = r.headers["content-location"]
        while (r := http.get(status)).status_code == 202:
            time.sleep(0.5)
        r.raise_for_status()
        t_build = time.perf_counter() - t0
        manifest = r.json()
        size = 0
        for item in manifest["output"]:
            with http.stream("GET", item["url"]) as resp:
                for chunk in resp.iter_bytes():
                    size += len(chunk)
        t_total = time.perf_counter() - t0
        http.delete(status)
    count = sum(o["count"] for o in manifest["output"])
    print(f"  export: {count:,} resources, {size / 2**20:,.0f} MiB in {t_total:.0f} s", file=sys.stderr)
    return {"resources": count, "bytes": size, "build_s": t_build, "total_s": t_total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True, help="SQLAlchemy URL postgresql+psycopg://...")
    ap.add_argument("--size", type=int, default=1_000_000, help="resources to seed")
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=200, help="timed requests per query type")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-seed", action="store_true", help="reuse the data already in the database")
    ap.add_argument("--create-db", action="store_true", help="CREATE DATABASE first (fails if it exists)")
    ap.add_argument("--drop-db", action="store_true", help="DROP DATABASE at the end")
    ap.add_argument("--export", action="store_true", help="also time a full system $export (writes NDJSON)")
    args = ap.parse_args()

    url = make_url(args.database_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    if args.create_db:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{url.database}"')
    server: subprocess.Popen[bytes] | None = None
    try:
        if not args.skip_seed:
            print(f"seeding {args.size:,} resources ...", file=sys.stderr)
            info = seed(args.database_url, args.size, args.patients, args.seed)
            print(
                f"seeded {info['rows']:,.0f} rows: COPY {info['copy_s']:.0f} s, indexes+VACUUM ANALYZE "
                f"{info['index_s']:.0f} s, table+indexes {info['bytes'] / 2**20:,.0f} MiB",
                file=sys.stderr,
            )
        else:
            info = None
        sample = sample_inputs(args.database_url, args.seed)
        private, public = make_keys()
        port = _free_port()
        env = {
            **os.environ,
            "CLINIE_DATABASE_URL": args.database_url,
            "CLINIE_JWT_PUBLIC_KEY": public,
            "CLINIE_JWT_AUDIENCE": "clinie-bench",
            "CLINIE_AUTH_ENABLED": "true",
            "CLINIE_EXPORT_DIR": str(REPO / ".clinie" / "bench-exports"),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.fhir_api.app:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        results = measure(base, queries(sample, private), args.requests, args.warmup, args.seed)
        export = time_export(base, token(private, "system/*.read")) if args.export else None
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.drop_db:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')

    cpu = os.cpu_count()
    print(
        f"\n{args.size:,} resources, {args.patients:,} patients; {args.requests} requests per query, sequential, "
        f"one keep-alive connection; {cpu} CPUs, {platform.machine()}, Python {platform.python_version()}"
    )
    if info:
        print(
            f"seed: COPY {info['copy_s']:.0f} s, indexes + VACUUM ANALYZE {info['index_s']:.0f} s, "
            f"table + indexes {info['bytes'] / 2**20:,.0f} MiB"
        )
    if export:
        print(
            f"system $export: {export['resources']:,} resources, {export['bytes'] / 2**20:,.0f} MiB NDJSON; "
            f"files written in {export['build_s']:.0f} s, downloaded by {export['total_s']:.0f} s"
        )
    print()
    print("| query | requests | p50 ms | p95 ms | p99 ms | max ms | mean total (entries when no total) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['query']} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} "
            f"| {r['hits']:,.1f} |"
        )


if __name__ == "__main__":
    main()
