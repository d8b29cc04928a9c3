"""Entry point of the embedded Argilla server; runs with the server virtualenv's python.

    <server-env>/bin/python annotator/server/_run.py --home DIR [--host 127.0.0.1] [--port 0] [--parent-pid PID]

Imports argilla_server, the standard library and the modules beside this file only (never
kasauti's environment). Under ``--home``: ``argilla.db`` (SQLite, the source of truth),
``owner.json`` (the owner's credentials, written beforehand by ``EmbeddedServer``; the owner user
is created from it), ``server.json`` (pid and URL, present while the server runs) and
``server.lock`` (held while it runs: one server per home directory), all owner-only (umask 077).
With ``--parent-pid`` the server stops when that process is gone (see ``_die_with_parent``).
Annotators' access is restricted by ``policy.py`` (blind rating).

Everything that needs Redis or Elasticsearch is replaced in-process: fakeredis stands in for
redis (patched before argilla_server is imported), the two background jobs run as asyncio tasks
in the server's loop, and the search engine is ``engine.py``.

Environment: ``KASAUTI_SERVER_TUNING`` (default ``sqlite,events,validators``; ``none`` for upstream
behaviour, the write benchmark's baseline) and ``KASAUTI_SERVER_ACCESS_LOG=1`` (log every request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOG = logging.getLogger("kasauti.server")


def _configure_environment(home: Path) -> None:
    os.environ.update(
        ARGILLA_HOME_PATH=str(home),
        ARGILLA_DATABASE_URL=f"sqlite+aiosqlite:///{home / 'argilla.db'}?check_same_thread=False",
        ARGILLA_SEARCH_ENGINE="kasauti",
        ARGILLA_ENABLE_TELEMETRY="0",
        ARGILLA_SHOW_HUGGINGFACE_SPACE_PERSISTENT_STORAGE_WARNING="0",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    os.environ.setdefault("ARGILLA_DATABASE_SQLITE_TIMEOUT", "30")


def _use_fakeredis() -> None:
    """argilla_server.jobs.queues calls redis.from_url at import: patch it first."""
    import fakeredis
    import redis

    server = fakeredis.FakeServer()
    redis.from_url = lambda *a, **k: fakeredis.FakeRedis(server=server)


def _without_hub_import_export() -> None:
    """Stand in for ``argilla_server.contexts.hub`` (dataset import/export with the Hugging Face Hub).

    It cannot work here (``HF_HUB_OFFLINE=1``; kasauti never uses it), and importing it loads HF
    ``datasets``, pandas and pyarrow: about a third of the server's start-up time.
    """
    import types

    hub = types.ModuleType("argilla_server.contexts.hub")

    class Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Hugging Face Hub import/export is not available in kasauti's embedded server")

    hub.HubDataset = type("HubDataset", (Unavailable,), {})
    hub.HubDatasetExporter = type("HubDatasetExporter", (Unavailable,), {})
    sys.modules[hub.__name__] = hub


def _tune_sqlite() -> None:
    """WAL journal and synchronous=NORMAL on every connection: no fsync per commit (what slows the
    one-transaction-per-request traffic of annotators submitting responses), readers never wait
    for a writer, and still durable across process kills (a kill -9 loses nothing committed; only
    a power loss can drop the last transactions)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()


def _skip_unobserved_webhook_events() -> None:
    """Build webhook events only when an enabled webhook listens for them.

    Upstream builds an event for every record of a bulk upsert after the commit, and for every
    response and record status change (a dataset query with five eager loads and a full
    serialisation each), then drops it when no webhook is enabled. A single query for the enabled
    webhooks (one per bulk) now decides whether that work is needed; with a webhook enabled for
    the event, upstream's code runs unchanged.
    """
    from argilla_server.bulk import records_bulk
    from argilla_server.contexts import datasets, distribution, records, webhooks
    from argilla_server.webhooks.v1.enums import RecordEvent

    async def observed(db, *events) -> bool:
        enabled = await webhooks.list_enabled_webhooks(db)
        return any(e in w.events for w in enabled for e in events)

    def guard(notify):
        async def notify_if_observed(db, event, obj):
            return await notify(db, event, obj) if await observed(db, event) else []

        return notify_if_observed

    for module in (records_bulk, datasets, distribution, records):
        for name in ("notify_record_event_v1", "notify_response_event_v1", "notify_dataset_event_v1"):
            if hasattr(module, name):
                setattr(module, name, guard(getattr(module, name)))

    notify_bulk = records_bulk.UpsertRecordsBulk._notify_upsert_record_events

    async def notify_upsert_record_events(self, records):
        if await observed(self._db, RecordEvent.created, RecordEvent.updated):
            await notify_bulk(self, records)

    records_bulk.UpsertRecordsBulk._notify_upsert_record_events = notify_upsert_record_events


def _reuse_settings_validators() -> None:
    """Build the pydantic validators of question and metadata settings once, not once per call.

    Upstream creates a new ``TypeAdapter`` (a full schema build, ~3 ms) each time a record's
    metadata or a response is validated: per record and per metadata property in a bulk upsert.
    """
    from argilla_server.models import database as models
    from pydantic import TypeAdapter

    for model, settings_type in ((models.MetadataProperty, models.MetadataPropertySettings),
                                 (models.Question, models.QuestionSettings)):
        adapter = TypeAdapter(settings_type)
        model.parsed_settings = property(lambda self, _a=adapter: _a.validate_python(self.settings))


def _migrate() -> None:
    import alembic.config
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic.config.main(argv=["-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])
    LOG.disabled = False  # alembic.ini's fileConfig disables existing loggers


async def _ensure_owner(owner_file: Path) -> None:
    """Create the owner user from owner.json, or bring its API key and password in line with it."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole

    creds = json.loads(owner_file.read_text())
    async with AsyncSessionLocal() as db:
        user = await accounts.get_user_by_username(db, creds["username"])
        if user is None:
            await User.create(db, first_name="Owner", username=creds["username"], role=UserRole.owner,
                              password_hash=accounts.hash_password(creds["password"]), api_key=creds["api_key"])
            LOG.info("owner user %r created", creds["username"])
        elif user.api_key != creds["api_key"] or not await asyncio.to_thread(
                accounts.verify_password, creds["password"], user.password_hash):  # bcrypt: beside the index
            await user.update(db, api_key=creds["api_key"], password_hash=accounts.hash_password(creds["password"]))
            LOG.info("owner user %r updated from %s", creds["username"], owner_file)


def _run_jobs_in_loop() -> None:
    """rq's synchronous mode never awaits coroutine jobs inside uvicorn's loop: run them as tasks."""
    from argilla_server.jobs import dataset_jobs, webhook_jobs

    tasks: set = set()

    def in_loop(fn):
        def delay(*args, **kwargs):
            task = asyncio.get_running_loop().create_task(fn(*args, **kwargs))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                                   or LOG.error("job %s failed: %r", fn.__name__, t.exception()))
            return task

        return delay

    dataset_jobs.update_dataset_records_status_job.delay = in_loop(dataset_jobs.update_dataset_records_status_job)
    webhook_jobs.notify_event_job.delay = in_loop(webhook_jobs.notify_event_job)


def _log_no_request_input() -> None:
    """Log a rejected request's validation errors by location and type only: their inputs are
    request bodies (passwords, API keys, annotators' text) and must never reach server.log. Done in
    the log record factory, so it holds whatever handlers alembic or argilla install later."""
    make_record = logging.getLogRecordFactory()

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and callable(getattr(exc, "errors", None)):
            try:
                errors = exc.errors()
            except Exception:  # noqa: BLE001  (an errors() that fails must still not log the input)
                errors = []
            where = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('type')}" for e in errors)
            record.msg, record.args = "%s: %s", (type(exc).__name__, where or "invalid input")
            record.exc_info = record.exc_text = None
        return record

    logging.setLogRecordFactory(redacting_factory)


def _die_with_parent(parent_pid: int) -> None:
    """Stop the server (gracefully, as SIGTERM does) within a second of the process that started it
    going away, killed with SIGKILL included. A watchdog thread rather than Linux's parent-death
    signal: that signal fires when the *thread* that forked us exits, which would stop a server
    started from a short-lived thread of a living process."""
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        LOG.warning("kasauti: the process that started the server (pid %d) is gone: stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True, type=Path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", default=0, type=int)
    ap.add_argument("--parent-pid", type=int, help="stop when this process (the one that started us) is gone")
    args = ap.parse_args(argv)
    os.umask(0o077)  # the database holds every user's API key: everything under home is owner-only
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    for path in (home, *home.iterdir()):  # files a server before this rule created
        path.chmod(path.stat().st_mode & 0o700)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _log_no_request_input()
    if args.parent_pid:
        _die_with_parent(args.parent_pid)

    lock = open(home / "server.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"kasauti: another server is already running on {home}", file=sys.stderr)
        return 3
    state_file = home / "server.json"
    state_file.unlink(missing_ok=True)

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"kasauti: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 4
    port = sock.getsockname()[1]
    url = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{port}"

    t0 = last = time.perf_counter()
    phases: dict = {}  # start-up phase -> seconds, reported in server.json

    def phase(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name], last = round(now - last, 3), now

    _configure_environment(home)
    _use_fakeredis()
    _without_hub_import_export()
    tuning = set(os.environ.get("KASAUTI_SERVER_TUNING", "sqlite,events,validators").split(","))
    if "sqlite" in tuning:
        _tune_sqlite()
    sys.path.insert(0, str(HERE))
    import engine  # noqa: E402  (registers the "kasauti" search engine)

    phase("import_engine")
    _migrate()
    phase("migrate")
    from argilla_server._app import app  # noqa: E402

    phase("import_app")

    _run_jobs_in_loop()
    import policy  # noqa: E402

    policy.install(app)
    if "events" in tuning:
        _skip_unobserved_webhook_events()
    if "validators" in tuning:
        _reuse_settings_validators()
    original_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a):
        async with original_lifespan(a):
            phase("patch_and_lifespan")
            async def rebuild() -> tuple:
                t = time.perf_counter()
                return await engine.rebuild_from_db(), round(time.perf_counter() - t, 3)

            _, (n, index_seconds) = await asyncio.gather(_ensure_owner(home / "owner.json"), rebuild())
            phase("owner_and_index")
            LOG.info("search index rebuilt from the database: %d records in %.2f s", n, index_seconds)
            _write_json_atomic(state_file, {"pid": os.getpid(), "url": url, "host": args.host, "port": port,
                                            "records_indexed": n, "index_seconds": index_seconds,
                                            "startup_seconds": round(last - t0, 2), "phase_seconds": phases,
                                            "tuning": sorted(tuning)})
            LOG.info("kasauti: argilla server ready at %s", url)
            tokenizing = asyncio.get_running_loop().create_task(engine.tokenize_all())
            try:
                yield
            finally:
                tokenizing.cancel()
                state_file.unlink(missing_ok=True)

    app.router.lifespan_context = lifespan

    import uvicorn

    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=5,
                            access_log=os.environ.get("KASAUTI_SERVER_ACCESS_LOG") == "1")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler it
    # found: make that an exception for both, so a requested stop exits with status 0.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
