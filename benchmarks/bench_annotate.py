"""Benchmark: push items to Argilla and pull them back with responses, against a baseline.

    python benchmarks/bench_annotate.py                      # 10,000 items on a fresh embedded server
    python benchmarks/bench_annotate.py --items 2000 --baseline-items 1000

Items are real PARIKSHA prompts and responses (Bengali, Odia, Tamil; the shipped demo data)
repeated under new ids, so text length and script are realistic. Phases, timed separately:

1. baseline push: the plain SDK, ``dataset.records.log(records)`` at its default batch size,
   into a dataset with the same form (``--baseline-items`` records);
2. kasauti push: ``annotator.push.push`` of ``--items`` items (diff against the server, bulk
   upserts of 500), then the same push again (nothing to send);
3. responses: ``--raters`` annotators each submit every rating question of every item (bulk
   upserts carrying the responses);
4. baseline pull: the SDK iterating ``dataset.records(with_responses=True)``;
5. kasauti pull: ``annotator.pull.collect`` of every response into the ratings tables.

Server memory is the resident set (VmRSS) and its peak (VmHWM) of the server process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import argilla as rg
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rubrics  # noqa: E402
from annotator.forms import FormOptions, build_settings  # noqa: E402
from annotator.people import Annotator, Roster, provision  # noqa: E402
from annotator.pull import collect, study_datasets  # noqa: E402
from annotator.push import bulk_upsert, iter_records, push, record_payload  # noqa: E402
from annotator.records import RecordMap  # noqa: E402
from sampling.pariksha import flatten_responses  # noqa: E402

CODES = {"bengali": "bn", "odia": "or", "tamil": "ta"}
STUDY = "bench"


def make_items(n: int) -> pd.DataFrame:
    """`n` sample rows cycling through the demo responses, each with a unique item id."""
    flat = flatten_responses(ROOT / "kasauti/demo_data/pariksha")
    flat = flat[flat["response"].str.strip() != ""].reset_index(drop=True)
    reps = flat.iloc[[i % len(flat) for i in range(n)]].reset_index(drop=True)
    return pd.DataFrame({
        "item_id": [f"{r}#{i}" for i, r in enumerate(reps["id"])],
        "language": reps["language"].map(CODES), "task": reps["task"], "prompt": reps["prompt"],
        "response": reps["response"], "system_prompt": reps["system_prompt"], "source_model": reps["model"],
        "stratum": reps["language"].map(CODES) + "/" + reps["task"], "length_bin": (reps.index % 5 + 1),
    })


def memory(pid: int | None) -> str:
    if not pid:
        return "n/a"
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return f"RSS {status['VmRSS'].strip()}, peak {status['VmHWM'].strip()}"


def timed(label: str, n: int, unit: str, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<44} {n:>7} {unit:<9} {dt:8.1f} s {n / dt:9.1f} {unit}/s", flush=True)
    return out, n / dt


def run(client: rg.Argilla, args, pid: int | None) -> None:
    rs = rubrics.load_rubric_set("pariksha")
    family = rs.families[0]
    items = make_items(args.items)
    print(f"items: {len(items)} ({', '.join(f'{k}={v}' for k, v in items['language'].value_counts().items())}), "
          f"mean response {items['response'].str.len().mean():.0f} characters; server {memory(pid)}")

    # 1. baseline: plain SDK log, default batch size, same form
    base = items.head(args.baseline_items)
    rg.Workspace(name="baseline", client=client).create()
    ds = rg.Dataset(name="sdk-log", workspace="baseline", client=client,
                    settings=build_settings(rs, family, ["system_prompt"], FormOptions())).create()
    record_map = RecordMap(Path(args.workdir) / "records.parquet")
    records = [rg.Record(id=p["external_id"], fields=p["fields"], metadata=p["metadata"])
               for p in (record_payload(it, ["system_prompt"], rid)
                         for it, rid in zip(base.to_dict("records"), record_map.assign(base["item_id"])))]
    _, base_push = timed("baseline push: SDK records.log (batch 256)", len(records), "records",
                         lambda: ds.records.log(records))

    # 2. kasauti push
    _, our_push = timed("kasauti push (diff + bulk upserts of 500)", len(items), "records",
                        lambda: push(client, items, rs, STUDY, record_map))
    print(f"  server {memory(pid)}")
    again, _ = timed("kasauti re-push, nothing changed (diff only)", len(items), "records",
                     lambda: push(client, items, rs, STUDY, record_map))
    assert again.added == 0 and sum(d.updated for d in again.datasets) == 0

    # 3. responses from --raters annotators, every metric of every item
    roster = Roster(annotators=[Annotator(username=f"rater{i}", name=f"Rater {i}", languages=sorted(set(items.language)))
                                for i in range(args.raters)])
    provision(client, roster, Path(args.workdir) / "annotators.csv")
    user_ids = [client.users(a.username).id for a in roster.annotators]
    metrics = [m.name for m in family.metrics]

    def respond():
        for sd in study_datasets(client, STUDY, rs):
            todo = [{"external_id": r["external_id"],
                     "responses": [{"user_id": str(u), "status": "submitted",
                                    "values": {m: {"value": (k + j + len(r["external_id"])) % 2} for j, m in enumerate(metrics)}}
                                   for k, u in enumerate(user_ids)]}
                    for r in iter_records(client, sd.id)]
            for start in range(0, len(todo), 500):
                bulk_upsert(client, sd.id, todo[start:start + 500])

    n_resp = len(items) * args.raters
    timed(f"responses: {args.raters} per item via bulk upserts", n_resp, "responses", respond)
    print(f"  server {memory(pid)}")

    # 4. baseline pull: SDK iteration with responses over one dataset
    sd = study_datasets(client, STUDY, rs)[0]
    sdk_ds = client.datasets(sd.name, workspace=sd.workspace)
    n_sd = sum(1 for _ in iter_records(client, sd.id))
    _, base_pull = timed(f"baseline pull: SDK records(with_responses) [{sd.workspace}]", n_sd, "records",
                         lambda: sum(len(r.responses) for r in sdk_ds.records(with_responses=True)))

    # 5. kasauti pull
    (ratings, revisions), our_pull = timed("kasauti pull (pages of 1000, all datasets)", len(items), "records",
                                           lambda: collect(client, STUDY, rs, record_map, items))
    expected = len(items) * args.raters * len(metrics)
    print(f"  ratings rows {len(ratings)} (expected {expected}), response rows {len(revisions)}; server {memory(pid)}")
    if len(ratings) != expected:
        raise SystemExit("pull is incomplete")
    print(f"push: kasauti {our_push:.1f} records/s vs SDK log {base_push:.1f} records/s = {our_push / base_push:.2f}x")
    print(f"pull: kasauti {our_pull:.1f} records/s vs SDK iteration {base_pull:.1f} records/s = {our_pull / base_pull:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--baseline-items", type=int, default=2_000)
    ap.add_argument("--raters", type=int, default=3)
    ap.add_argument("--url", help="use a running Argilla (fresh, or at least without a 'bench' study) instead")
    ap.add_argument("--api-key", help="owner API key for --url")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="kasauti-bench-") as tmp:
        args.workdir = tmp
        if args.url:
            run(rg.Argilla(api_url=args.url, api_key=args.api_key, timeout=300), args, None)
            return
        from annotator.server import EmbeddedServer

        t0 = time.perf_counter()
        with EmbeddedServer(Path(tmp) / "argilla") as srv:
            print(f"embedded server up in {time.perf_counter() - t0:.1f} s at {srv.url}")
            run(rg.Argilla(api_url=srv.url, api_key=srv.api_key, timeout=300), args, srv.pid)


if __name__ == "__main__":
    main()
