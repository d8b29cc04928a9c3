"""The `kasauti` command line: a thin layer that reads the study, calls each stage's library function
and prints. The stages (and pandas) are imported inside the commands, so `kasauti --help` stays fast."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import pandas as pd

    import sampling
    from kasauti.study import Study

app = typer.Typer(
    help="Evaluate multilingual LLM-generated data with native speakers and calibrated LLM judges.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubrics_app = typer.Typer(help="List, show and validate rubric sets.", no_args_is_help=True)
app.add_typer(rubrics_app, name="rubrics")
# soft_wrap: never break file paths and keys across lines when output is not a terminal
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


@rubrics_app.command("list")
def rubrics_list() -> None:
    """List the built-in rubric sets."""
    import rubrics

    for name in rubrics.builtin_names():
        rs = rubrics.load_rubric_set(name)
        n = sum(len(f.metrics) for f in rs.families)
        console.print(f"[bold]{name}[/] v{rs.version}: {rs.title} ({len(rs.families)} families, {n} metrics)")


@rubrics_app.command("show")
def rubrics_show(
    name: str = typer.Argument(..., help="Built-in set name or path to a YAML file."),
    judge_prompt: bool = typer.Option(False, "--judge-prompt", help="Show a judge prompt instead of the guidelines."),
) -> None:
    """Print a rubric set's annotator guidelines (Markdown) or an example judge prompt."""
    import rubrics

    try:
        rs = rubrics.load_rubric_set(name, require_judge=judge_prompt)
    except rubrics.RubricError as exc:
        fail(str(exc))
    if not judge_prompt:
        print(rubrics.render_guidelines(rs))
        return
    for fam in rs.families:
        example = {"task": fam.tasks[0], "prompt": "<prompt>", "response": "<response>"}
        for msg in rubrics.judge_messages(fam.metrics, example, "<language>"):
            print(f"--- {fam.name}: {msg['role']} ---\n{msg['content']}\n")


@rubrics_app.command("validate")
def rubrics_validate(paths: list[Path] = typer.Argument(..., help="Rubric YAML files.")) -> None:
    """Validate rubric YAML files; exit 2 on the first invalid one."""
    import rubrics

    for path in paths:
        try:
            rs = rubrics.load_rubric_set(path, require_judge=False)
        except rubrics.RubricError as exc:
            fail(str(exc))
        kind = f" (import only: no judge section in {rs.without_judge})" if rs.without_judge else ""
        console.print(f"[green]ok[/] {escape(str(path))}: {rs.name} v{rs.version}, {len(rs.metric_names)} metrics{escape(kind)}")


def _study(path: Path) -> Study:
    from kasauti.study import Study, StudyError

    try:
        return Study(path)
    except StudyError as exc:
        fail(str(exc))


@app.command()
def init(
    study_dir: Path = typer.Argument(..., help="Directory to create the study in."),
    data: str = typer.Option(..., "--data", help="Path to the generated data (file or directory)."),
    data_format: str = typer.Option("auto", "--format", help="auto, jsonl, json, parquet, csv, hf, pariksha."),
    per_stratum: int = typer.Option(100, help="Items to draw per language x task stratum."),
    rubric: str = typer.Option("pariksha", help="Built-in rubric set name or YAML path."),
) -> None:
    """Create a study directory with a commented kasauti.yaml to edit."""
    from kasauti.study import StudyError, init_study

    try:
        study = init_study(study_dir, data, data_format=data_format, per_stratum=per_stratum, rubric=rubric)
    except StudyError as exc:
        fail(str(exc))
    console.print(f"created {study.config_path}: check its column mapping, then run `kasauti sample {study_dir}`")


def print_strata(strata: pd.DataFrame, tests: pd.DataFrame) -> None:
    """Population vs sample per stratum and length bin, with the two-sample length test."""
    import pandas as pd
    from rich.table import Table

    bins = sorted(strata["length_bin"].unique())
    table = Table(title="Population -> sample per stratum and length bin (grapheme units)", show_lines=False)
    table.add_column("stratum", no_wrap=True)
    table.add_column("N", justify="right")
    table.add_column("n", justify="right")
    for b in bins:
        table.add_column(f"bin {b}", justify="right")
    table.add_column("KS p", justify="right")
    tests = tests.set_index("stratum")
    for stratum, g in strata.groupby("stratum", sort=True):
        t = tests.loc[stratum]
        cells = [f"{r.population}->{r.sampled}" for r in g.sort_values("length_bin").itertuples()]
        n = f"{int(t['sampled'])}" + ("*" if g["taken_whole"].iloc[0] else "")
        table.add_row(stratum, f"{int(t['population'])}", n, *cells, "-" if pd.isna(t["ks_pvalue"]) else f"{t['ks_pvalue']:.2f}")
    console.print(table)
    console.print(
        "N: rows kept; n: sampled (* = stratum smaller than per_stratum, taken whole). "
        "KS p: two-sample Kolmogorov-Smirnov test of response lengths, population vs sample; "
        "a small p (< 0.05) would mean the sample's lengths differ from the stratum's; - where nothing was sampled."
    )


def run_sample(study: Study) -> sampling.SampleResult:
    """`sampling.sample_study` with a progress spinner, then what it read, kept and drew."""
    import sampling
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    cfg = study.config
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("reading and validating rows", total=None)
        result = sampling.sample_study(
            study.root, cfg.data, study.data_path, cfg.sampling,
            progress=lambda n: bar.update(task, description=f"reading and validating: {n:,} rows"),
        )
    intake = result.intake
    console.print(f"read {intake['rows_read']:,} rows from {intake['source']}, kept {intake['rows_kept']:,}")
    if len(intake["files"]) > 1:
        console.print(escape("  " + ", ".join(f"{f['file']}: {f['rows_read']:,} rows" for f in intake["files"])), highlight=False)
    for kind in ("excluded", "warnings"):
        for reason, info in intake[kind].items():
            console.print(escape(f"  {kind[:-1] if kind == 'warnings' else 'excluded'}: {info['count']:,} x {reason} ({info['why']}), e.g. {info['examples'][0]}"), highlight=False)
    for reason, info in intake.get("filters", {}).get("rejected", {}).items():
        console.print(escape(f"  filtered: {info['count']:,} x {reason}, e.g. {info['examples'][0]}"), highlight=False)
    print_strata(result.strata, result.tests)
    console.print(f"wrote {study.sample} ({len(result.sample):,} items), {study.strata}, {study.intake_report}")
    return result


@app.command()
def sample(study_dir: Path = typer.Argument(..., help="The study directory.")) -> None:
    """Validate the data and draw the stratified, length-binned sample."""
    import sampling

    study = _study(study_dir)
    try:
        run_sample(study)
    except (sampling.SourceError, OSError) as exc:
        fail(str(exc))


@app.command()
def pairs(
    study_dir: Path = typer.Argument(..., help="The study directory (reads sample.parquet)."),
    design: str = typer.Option("all", help="all: every two models of each prompt; balanced: --per-prompt pairs per "
                               "prompt, each model (then each two models) used about equally often."),
    per_prompt: Optional[int] = typer.Option(None, "--per-prompt", help="Pairs per prompt with --design balanced "
                                             "(default: half the prompt's models)."),
    repeat_share: float = typer.Option(0.0, "--repeat-share", help="Share of the pairs shown again in swapped order, "
                                       "as a consistency check on annotators."),
    seed: int = typer.Option(0, help="Seed of the shown order, the balanced choice and the repeats."),
    boosted: bool = typer.Option(False, "--boosted", help="Pair each item's original with its boosted version "
                                 "(boosted.parquet, `kasauti boost`) instead."),
) -> None:
    """Pair responses to the same prompt by two source models into pairs.parquet (for `push --pairs`, `judge --pairs`)."""
    from sampling.pairs import write_pairs

    study = _study(study_dir)
    try:
        path, c = write_pairs(study.root, design, seed, per_prompt, repeat_share, boosted)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    if boosted:
        console.print(f"{c['original_items']} items, {c['boosted_items']} boosted: {c['only_original']} not boosted, "
                      f"{c['only_boosted']} boosted but not in the sample, {c['unchanged']} unchanged (not paired); "
                      f"{c['pairs']} pairs and {c['repeats']} repeats in swapped order", highlight=False)
    else:
        console.print(f"{c['items']} items: {c['items_without_source_model']} without a source model and {c['items_alone']} "
                      f"alone at their prompt (not paired); {c['pairs']} pairs of {c['candidate_pairs']} candidates over "
                      f"{c['prompts']} prompts, and {c['repeats']} repeats in swapped order", highlight=False)
    console.print(f"wrote {path}", highlight=False)


@app.command()
def demo(
    directory: Path = typer.Option(Path("kasauti-demo"), "--dir", help="Where to create the demo study."),
    wait: Optional[bool] = typer.Option(
        None, "--wait/--no-wait", help="Keep the annotation server running until Ctrl-C (default: when run in a terminal)."
    ),
    port: Optional[int] = typer.Option(None, help="Annotation server port (default: annotation.port, 6900; 0 = any free port)."),
) -> None:
    """Run the workflow on the shipped PARIKSHA subset (Bengali, Odia, Tamil): no keys, no GPU."""
    import pandas as pd

    import reports
    import rubrics
    import studytables
    from judge.testing import FakeJudgeServer
    from kasauti.demo import DEMO_DATA, demo_study, use_judge_server

    study = demo_study(directory)
    console.print(f"[bold]kasauti demo[/]: study {study.root} on {DEMO_DATA} (PARIKSHA round 1 subset, MIT licence)")
    console.rule("1. sample: validate and draw a stratified, length-binned sample")
    run_sample(study)
    console.rule("2. judge: score the sample through an OpenAI-compatible endpoint (a local test server)")
    with FakeJudgeServer() as server:
        study = use_judge_server(study, server.url)
        run_judges(study, study.config.judges, rubrics.load_rubric_set(study.config.rubric), None, True)
    console.rule("3. annotate: the embedded Argilla server, one workspace per language, rubric forms")
    server = demo_annotation(study, port)
    console.rule("4. report: native speakers vs the GPT-4 judge (PARIKSHA's ratings) and the demo judge")
    ratings, items, imp = reports.from_pariksha(DEMO_DATA)
    ratings = pd.concat([ratings, reports.judgments_to_long(studytables.read(studytables.JUDGMENTS, study.judgments), study.judgments)], ignore_index=True)
    paths = reports.build_report(ratings, rubrics.load_rubric_set("pariksha"), study.report_dir, items, imp, study.config.report,
                                 title="kasauti demo: PARIKSHA subset (Bengali, Odia, Tamil)")
    for line in imp.lines():
        console.print(f"  {line}", highlight=False)
    console.print(f"[bold green]report:[/] {paths['html']}", highlight=False)
    if not (sys.stdin.isatty() if wait is None else wait):
        server.stop()
        console.print("annotation server stopped (run `kasauti serve` on the study, or the demo with --wait, to keep it up)")
        return
    console.print("The annotation server keeps running: log in as the demo annotator. Ctrl-C stops it.")
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


def demo_annotation(study: Study, port: int | None):
    """Start the study's embedded Argilla, provision the demo annotator, push the sample; print the login."""
    import rubrics
    import studytables
    from annotator.demo import demo_push
    from annotator.people import read_passwords
    from annotator.server import EmbeddedServer

    _quiet_sdk()
    port = study.config.annotation.port if port is None else port
    server = EmbeddedServer(study.argilla_dir, port=port, notify=lambda msg: err.print(msg, highlight=False)).start()
    user, password_file, pushed = demo_push(study.root, study.config.name, studytables.read(studytables.SAMPLE, study.sample),
                                            rubrics.load_rubric_set(study.config.rubric), server.url, server.api_key)
    for d in pushed.datasets:
        console.print(f"  {d.workspace}/{d.name}: {d.added} added, {d.updated} updated, {d.unchanged} unchanged", highlight=False)
    password = next(r["password"] for r in read_passwords(password_file) if r["username"] == user)
    console.print(f"[bold green]annotate:[/] {server.url}  (demo login: {user} / {password}; "
                  f"kept in {password_file}, mode 0600)", highlight=False, soft_wrap=True)
    return server


@app.command("report")
def report(
    study_dir: Path = typer.Argument(None, help="Study directory: reads sample.parquet, ratings.parquet, judgments.parquet."),
    pariksha: Path = typer.Option(None, "--pariksha", help="Run on the PARIKSHA round-1 files in this directory instead."),
    ratings: Path = typer.Option(None, "--ratings", help="Run on a .csv/.parquet in the long ratings format instead."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: STUDY_DIR/report; required otherwise)."),
    rubric: str = typer.Option(None, "--rubric", help="Rubric set name or YAML path (default: the study's, else pariksha)."),
    n_boot: int = typer.Option(None, "--n-boot", min=0, help="Bootstrap resamples per figure (default 1000; 0: no CIs)."),
    allow_excluded: bool = typer.Option(False, "--allow-excluded", help="Exit 0 even when more than report.max_excluded_share "
                                        "of the ratings were excluded as invalid (the report warns at the top)."),
    consensus_min_humans: int = typer.Option(None, "--consensus-min-humans", min=1, help="Human ratings an item needs for a "
                                             "human consensus (default report.consensus_min_humans, 1)."),
) -> None:
    """Agreement, calibration and verdicts as report.html, report.json and report.csv."""
    import reports
    import rubrics
    from kasauti.study import Study, StudyError

    if sum(x is not None for x in (study_dir, pariksha, ratings)) != 1:
        fail("give exactly one of STUDY_DIR, --pariksha DIR or --ratings FILE")
    given = {k: v for k, v in {"n_boot": n_boot, "consensus_min_humans": consensus_min_humans}.items() if v is not None}
    try:
        if study_dir is not None:
            study = Study(study_dir)
            rs = rubrics.load_rubric_set(rubric or study.config.rubric, require_judge=False)
            paths, imp = reports.report_study(study.root, rs, study.config.report.model_copy(update=given), out)
        elif out is None:
            fail("--out OUTDIR is required with --pariksha or --ratings")
        else:
            cfg, comparisons = reports.ReportConfig().model_copy(update=given), None
            if pariksha is not None:
                table, items, imp = reports.from_pariksha(pariksha)
                cfg, comparisons = cfg.model_copy(update={"model_families": reports.PARIKSHA_FAMILIES}), reports.pariksha_comparisons(pariksha)
            else:
                table, items, imp = reports.read_long(ratings), None, reports.ImportReport(source=str(ratings))
            rs = rubrics.load_rubric_set(rubric or "pariksha", require_judge=False)
            paths = reports.build_report(table, rs, out, items, imp, cfg, comparisons=comparisons)
    except (StudyError, rubrics.RubricError, ValueError, OSError) as exc:
        fail(str(exc))
    for line in imp.lines():
        console.print(f"  {line}", highlight=False)
    for kind, path in paths.items():
        console.print(f"[green]wrote[/] {kind}: {path}", highlight=False)
    if imp.warning and not allow_excluded:
        fail(f"{imp.warning}. The report is written ({paths['html']}); pass --allow-excluded to accept it")
    if imp.warning:
        err.print(f"[bold yellow]warning:[/] {escape(imp.warning)}", highlight=False)


def _print_comparisons(study) -> None:
    """Print judge_comparisons.parquet's size, each judge's position statistics and, for two models (original
    vs boosted), the win rate of the second over the first per language."""
    import judge
    import studytables
    from reports.pairwise.winrate import head_to_head

    out = study.root / studytables.JUDGE_COMPARISONS.file
    frame = studytables.read(studytables.JUDGE_COMPARISONS, out)
    console.print(f"{out}: {len(frame)} judge comparisons", highlight=False, soft_wrap=True)
    for r in judge.position_stats(frame).itertuples():
        console.print(f"  {r.rater} / {r.criterion}: position consistency {r.consistency:.3f} ({r.n_consistent} of {r.n_repeated} "
                      f"pairs), first position won {r.first_win_rate:.3f} of {r.n_decisive} decisive verdicts "
                      f"(95% CI {r.ci_low:.3f}-{r.ci_high:.3f})", highlight=False, soft_wrap=True)
    heads = head_to_head(frame) if len(frame) else None
    for r in () if heads is None else heads.itertuples():
        console.print(f"  {r.raters} / {r.criterion} / {r.language}: {r.model} over {r.over} win rate {r.win_rate:.3f} "
                      f"(95% CI {r.ci_low:.3f}-{r.ci_high:.3f}; ties half) on {r.n_comparisons} comparisons of "
                      f"{r.n_prompts} prompts: {r.wins} won, {r.losses} lost, {r.ties} ties", highlight=False, soft_wrap=True)


@app.command("judge")
def judge_cmd(
    study_dir: Path = typer.Argument(..., help="The study directory (with kasauti.yaml and sample.parquet)."),
    names: list[str] = typer.Option(None, "--judge", help="Run only this judge (repeatable); default: all configured."),
    dry: bool = typer.Option(False, "--dry-run", help="Print the first prompts and the number of calls; call nothing."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N items of the sample."),
    retry_failed: bool = typer.Option(True, "--retry-failed/--skip-failed",
                                      help="Call again where the ledger recorded a failure (the default), or leave those alone."),
    pairs: bool = typer.Option(False, "--pairs", help="Compare the pairs of pairs.parquet (each in both orders) instead; "
                                                     "writes judge_comparisons.parquet. --limit counts pairs."),
    overall: bool = typer.Option(False, "--overall", help="With --pairs: one overall criterion instead of one per metric."),
) -> None:
    """Score the study's sample with its configured LLM judges; writes judgments.parquet (or, with --pairs,
    judge_comparisons.parquet)."""
    import judge
    import rubrics
    from sampling.pairs import read_boosted

    study = _study(study_dir)
    cfgs = study.config.judges
    if not cfgs:
        fail(f"{study.config_path}: no judges configured; add a `judges:` list (see README, 'Judges')")
    unknown = sorted(set(names or []) - {j.name for j in cfgs})
    if unknown:
        fail(f"unknown judge(s) {unknown}; {study.config_path} configures {[j.name for j in cfgs]}")
    cfgs = [j for j in cfgs if not names or j.name in names]
    if not study.sample.exists():
        fail(f"{study.sample}: not found; run `kasauti sample {study_dir}` first")
    try:
        rs = rubrics.load_rubric_set(study.config.rubric)
    except rubrics.RubricError as exc:
        fail(str(exc))
    for cfg in cfgs:
        try:
            warning = cfg.key_warning()
        except ValueError as exc:
            fail(str(exc))
        if warning:
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if dry:
        try:
            sample = judge.read_sample(study.sample)
            pairs_df = judge.limit_items(judge.read_pairs(study.root), limit) if pairs else None
            boosted = read_boosted(study.root) if pairs else None
            sample = sample if pairs else judge.limit_items(sample, limit)
        except ValueError as exc:
            fail(str(exc))
        for cfg in cfgs:
            try:
                d = (judge.dry_compare(pairs_df, sample, rs, cfg, study.judge_ledger, overall=overall, retry_failed=retry_failed,
                                       boosted=boosted)
                     if pairs else judge.dry_run(sample, rs, cfg, study.judge_ledger, retry_failed=retry_failed))
            except ValueError as exc:
                fail(str(exc))
            console.print(f"[bold]{cfg.name}[/] ({cfg.backend}, {cfg.model}, {cfg.mode}): {d.planned} calls planned, "
                          f"{d.cached} in the ledger, [bold]{d.pending} would be made[/]", soft_wrap=True)
            for call, messages in d.examples:
                console.print(f"--- item {call.item_id} metrics {[m.name for m in call.metrics]} repeat {call.repeat} "
                              f"prompt {call.prompt_hash} ---", highlight=False, soft_wrap=True)
                for m in messages:
                    console.print(f"[{m['role']}]\n{m['content']}\n", markup=False, highlight=False, soft_wrap=True)
        return
    failed, skipped = run_judges(study, cfgs, rs, limit, retry_failed, pairs=pairs, overall=overall)
    if failed:
        err.print(f"[bold red]{failed} calls failed[/] (reasons above): fix the cause, then run `kasauti judge {study_dir}` "
                  "again to call them again", highlight=False, soft_wrap=True)
    if skipped:
        err.print(f"{skipped} calls failed in an earlier run were skipped: run without --skip-failed to call them again",
                  highlight=False, soft_wrap=True)
    if failed or skipped:
        raise typer.Exit(1)


def run_judges(study: Study, cfgs: list, rs, limit: int | None, retry_failed: bool, pairs: bool = False,
               overall: bool = False) -> tuple[int, int]:
    """`judge.judge_study` (or, with `pairs`, `judge.compare_study`) with a progress bar, then each
    judge's summary; returns (failed, skipped) calls."""
    import judge
    import studytables
    from judge.backends import FatalError
    from judge.progress import RichProgress

    try:
        summaries = (judge.compare_study(study.root, rs, cfgs, limit=limit, overall=overall, progress=RichProgress(console),
                                         retry_failed=retry_failed) if pairs else
                     judge.judge_study(study.root, rs, cfgs, limit=limit, progress=RichProgress(console),
                                       retry_failed=retry_failed))
    except (FatalError, ValueError, ImportError) as exc:  # ImportError: a backend's missing package, with the install hint
        fail(str(exc))
    for s in summaries:
        cost = "" if s.cost is None else f", cost ${s.cost:.4f}"
        earlier = (f"{s.retried} failed earlier and retried, " if s.retried else "") + (
            f"{s.skipped_failed} failed earlier and skipped, " if s.skipped_failed else "")
        console.print(
            f"[bold]{s.judge}[/]: {s.planned} calls, {s.cached} cached, {earlier}{s.ok} ok, {s.failed} failed, "
            f"{s.unparseable} unparseable; {s.requests} requests ({s.retries} retries, {s.reasks} re-asks), "
            f"{s.prompt_tokens}+{s.completion_tokens} tokens{cost}, {s.elapsed_s:.1f} s", highlight=False, soft_wrap=True)
        if s.repeats_skipped:
            console.print(f"  {s.repeats_skipped} pairs repeated for annotators (repeat_of) not asked again: every pair "
                          "is asked in both orders", highlight=False, soft_wrap=True)
        for kind, n in sorted(s.errors.items()):
            console.print(f"  {n} x {escape(kind)}", highlight=False)
    if pairs:
        _print_comparisons(study)
    else:
        n = studytables.read_arrow(studytables.JUDGMENTS, study.judgments, ["item_id"]).num_rows
        console.print(f"{study.judgments}: {n} judgments", highlight=False, soft_wrap=True)
    return sum(s.failed for s in summaries), sum(s.skipped_failed for s in summaries)


@app.command()
def serve(
    study_dir: Path = typer.Argument(..., help="The study directory; server state lives in <study>/argilla/."),
    port: Optional[int] = typer.Option(None, help="Port (default: annotation.port of the study, 6900)."),
    host: Optional[str] = typer.Option(None, help="Address to bind (default: annotation.host, 127.0.0.1)."),
) -> None:
    """Run the embedded Argilla server (API and annotation UI) in the foreground; Ctrl-C stops it."""
    from annotator.server import EmbeddedServer, ServerEnvError, ServerError

    study = _study(study_dir)
    cfg = study.config.annotation
    if cfg.url:
        fail(f"{study.config_path}: annotation.url is {cfg.url}; `kasauti serve` runs the embedded server only "
             "(set annotation.url to null to use it)")
    srv = EmbeddedServer(study.argilla_dir, host=host or cfg.host, port=cfg.port if port is None else port,
                         notify=lambda msg: err.print(msg, highlight=False))
    if srv.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] binding {srv.host}: the server is reachable from other machines")
    try:
        srv.start()
    except (ServerError, ServerEnvError) as exc:
        fail(str(exc))
    console.print(f"Argilla is running at [bold]{srv.url}[/]", highlight=False, soft_wrap=True)
    console.print(f"owner credentials (username, password, API key): {srv.owner_file}", highlight=False, soft_wrap=True)
    console.print(f"server log: {srv.log_file}\nPress Ctrl-C to stop.", highlight=False, soft_wrap=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops as cleanly as Ctrl-C
    try:
        code = srv.wait()
    except KeyboardInterrupt:
        console.print("stopping the server ...")
        srv.stop()
        console.print("stopped.")
        return
    fail(f"the server exited with code {code}; see {srv.log_file}")


def _quiet_sdk() -> None:
    """The argilla SDK warns on every lookup of a name that does not exist yet (each first push)."""
    import warnings

    warnings.filterwarnings("ignore", module=r"argilla\.")


def _annotation(study_dir: Path):
    """(study, rubric set, owner client) for the annotation commands; exits 2 with a clear message."""
    import rubrics
    from annotator.connect import ConnectError, connect
    from kasauti.study import Study, StudyError

    _quiet_sdk()
    try:
        study = Study(study_dir)
        rs = rubrics.load_rubric_set(study.config.rubric)
        return study, rs, connect(study.root, study.config.annotation)
    except (StudyError, rubrics.RubricError, ConnectError) as exc:
        fail(str(exc))


def print_provision(rep) -> None:
    """What `annotator.provision_study` did; never the passwords, only where they are."""
    console.print(f"roster: {rep.annotators} annotators; new users {rep.users_created or 'none'}; "
                  f"new workspaces {rep.workspaces_created or 'none'}; memberships +{len(rep.memberships_added)} "
                  f"-{len(rep.memberships_removed)}", highlight=False)
    if rep.users_created:
        console.print(f"passwords of new users (hand them out, then keep the file private): {rep.password_file}",
                      highlight=False)


@app.command()
def people(
    study_dir: Path = typer.Argument(..., help="The study directory."),
    roster: Optional[Path] = typer.Option(None, help="Roster YAML (default: annotation.roster of the study, "
                                                     "relative to the study directory)."),
) -> None:
    """Create annotator users and one workspace per language from a roster; passwords go to a 0600 file."""
    from annotator.people import RosterError
    from annotator.study import provision_study

    study, _, client = _annotation(study_dir)
    roster = roster.resolve() if roster else study.config.annotation.roster
    if roster is None:
        fail("no roster: pass --roster roster.yaml or set annotation.roster in kasauti.yaml")
    try:
        print_provision(provision_study(client, study.root, roster))
    except RosterError as exc:
        fail(str(exc))


@app.command()
def push(
    study_dir: Path = typer.Argument(..., help="The study directory (its sample.parquet is pushed)."),
    batch_size: int = typer.Option(500, help="Records per bulk request (1..500)."),
    adjudicate: Optional[bool] = typer.Option(
        None, "--adjudicate/--blind",
        help="Show a judge's scores as suggestions on items with min_submitted submitted responses "
             "(default: annotation.adjudication, off)."),
    judge: Optional[str] = typer.Option(None, help="With --adjudicate: the judge to show (needed if several)."),
    discard_changed_ratings: bool = typer.Option(
        False, "--discard-changed-ratings",
        help="Items whose texts changed after annotators responded: delete those responses and show the new texts "
             "(pull first to keep them)."),
    pairs: bool = typer.Option(False, "--pairs", help="Push pairs.parquet as pairwise comparison forms instead."),
    random: Optional[int] = typer.Option(
        None, "--random", metavar="N",
        help="Push only a random slice of N sampled items (for PPI and escalation thresholds), recorded in "
             "slices.parquet; a larger N later adds only new items."),
    seed: Optional[int] = typer.Option(None, help="With --random: the slice's seed (default: the slice's, else 0)."),
) -> None:
    """Push the sample to Argilla: one dataset per language and task family; re-push only sends changes."""
    import studytables
    from annotator.people import RosterError
    from annotator.push import PushError
    from annotator.records import RecordMapError
    from annotator.study import push_study

    study, rs, client = _annotation(study_dir)
    try:
        done = push_study(client, study.root, study.config.name, rs, study.config.annotation, batch_size=batch_size,
                          adjudicate=adjudicate, judge=judge, discard_changed_ratings=discard_changed_ratings, pairs=pairs,
                          random=random, seed=seed, progress=lambda name, done, todo: err.print(f"  {name}: {done}/{todo}", highlight=False))
    except (PushError, RecordMapError, RosterError, studytables.TableError, KeyError) as exc:
        fail(str(exc))
    if done.provision is not None:
        print_provision(done.provision)
    for d in done.push.datasets:
        console.print(f"{d.workspace}/{d.name}: {d.items} {'pairs' if pairs else 'items'}, {d.added} added, {d.updated} updated, "
                      f"{d.unchanged} unchanged{' (new dataset)' if d.created else ''}"
                      f"{f', {d.discarded_responses} responses discarded' if d.discarded_responses else ''}",
                      highlight=False)
    for lang, n in done.push.unstaffed.items():
        err.print(f"[bold yellow]warning:[/] {n} {'pairs' if pairs else 'items'} in language {lang!r}, but no annotator is a member of "
                  f"workspace {lang!r}: add one to the roster and run `kasauti people`", highlight=False)
    if done.slice is not None:
        console.print(f"{study.slices}: random slice of {len(done.slice)} items (seed "
                      f"{done.slice['seed'].iloc[0]}, inclusion probability {done.slice['inclusion_probability'].iloc[0]:.4g})",
                      highlight=False)
    if done.adjudicated is not None:
        console.print(f"adjudication: judge suggestions on {done.adjudicated} items with >= "
                      f"{study.config.annotation.min_submitted} submitted responses", highlight=False)
    console.print(f"Argilla: {client.http_client.base_url}", highlight=False)


@app.command()
def pull(study_dir: Path = typer.Argument(..., help="The study directory.")) -> None:
    """Pull every response into ratings.parquet and revisions.parquet (all statuses, with timestamps), the
    pairwise comparisons into comparisons.parquet once pairs were pushed, and escalated items' responses into
    ratings_escalated.parquet / revisions_escalated.parquet once items were escalated."""
    import studytables
    from annotator.pull import PullError
    from annotator.push import PushError
    from annotator.records import RecordMapError
    from annotator.study import pull_study

    study, rs, client = _annotation(study_dir)
    try:
        pulled = pull_study(client, study.root, study.config.name, rs)
    except (PushError, PullError, RecordMapError, studytables.TableError) as exc:
        fail(str(exc))
    ratings, revisions, stale = pulled.ratings, pulled.revisions, pulled.stale
    submitted = ratings[ratings["status"] == "submitted"]
    console.print(f"{study.ratings}: {len(ratings)} ratings ({len(submitted)} submitted) by "
                  f"{ratings['rater'].nunique()} annotators on {ratings['item_id'].nunique()} items", highlight=False)
    console.print(f"{study.revisions}: {len(revisions)} responses, "
                  f"{int(revisions['revised_response'].notna().sum())} with a revision", highlight=False)
    if pulled.escalated is not None:
        escalated = pulled.escalated[0]
        console.print(f"{study.ratings_escalated}: {len(escalated)} ratings of escalated items "
                      f"({int((escalated['status'] == 'submitted').sum())} submitted)", highlight=False)
    if pulled.comparisons is not None:
        comparisons = pulled.comparisons
        console.print(f"{study.path(studytables.COMPARISONS.file)}: {len(comparisons)} comparisons by "
                      f"{comparisons['rater'].nunique()} annotators on {comparisons['pair_id'].nunique()} pairs",
                      highlight=False)
    if stale:
        err.print(f"[bold yellow]warning:[/] {len(stale)} items were rated on texts that differ from {study.sample} "
                  f"(e.g. {', '.join(map(repr, stale[:3]))}); their ratings and the judges' are about different texts: "
                  "restore the sample, or push (--discard-changed-ratings) to have the new texts rated", highlight=False)


@app.command()
def status(study_dir: Path = typer.Argument(..., help="The study directory.")) -> None:
    """Annotation progress per language (dataset) and per annotator."""
    from rich.table import Table

    from annotator.status import progress

    study, rs, client = _annotation(study_dir)
    datasets, annotators = progress(client, study.config.name, rs)
    for title, df in (("datasets", datasets), ("annotators", annotators)):
        table = Table(title=f"{study.config.name}: {title}")
        for col in df.columns:
            table.add_column(col)
        for row in df.itertuples(index=False):
            table.add_row(*map(str, row))
        console.print(table)


@app.command()
def escalate(
    study_dir: Path = typer.Argument(..., help="The study directory (sample, ratings and judgments)."),
    target: float = typer.Option(0.9, help="Agreement with the human consensus to guarantee on the items the judge decides."),
    delta: float = typer.Option(0.05, help="The guarantee holds with probability at least 1 - delta."),
    confidence: str = typer.Option("probs", help="Judge confidence: probs (logprobs), repeats or judges (a panel)."),
    judge: Optional[str] = typer.Option(None, help="The judge that decides (needed if several, unless --confidence judges)."),
    dry: bool = typer.Option(False, "--dry-run", help="Print the thresholds and counts; write and push nothing."),
) -> None:
    """Let the judge decide where its confidence guarantees the target; push the other items to native speakers."""
    from annotator.escalate import escalate as push_escalated, escalation_study
    from annotator.forms import FormOptions
    from annotator.push import PushError, read_sample
    from annotator.records import RECORD_MAP, RecordMap, RecordMapError
    import pandas as pd

    import rubrics
    from reports.decisions import decide_study

    study = _study(study_dir)
    try:
        rs = rubrics.load_rubric_set(study.config.rubric)
        d = decide_study(study.sample, study.ratings, study.judgments, rs, target, delta, confidence, judge,
                         escalated_ratings_path=study.ratings_escalated, slices_path=study.slices)
    except (rubrics.RubricError, ValueError) as exc:
        fail(str(exc))
    for c in d.cells.itertuples():
        rule = ("no threshold: humans decide all" if pd.isna(c.threshold) else
                f"confidence >= {c.threshold:.3f}, guaranteed agreement {c.guaranteed_agreement:.3f}")
        console.print(f"{c.metric} / {c.language}: {rule}; coverage {c.coverage:.2f}; {c.n_calibration} calibration "
                      f"items; {c.escalated} of {c.items} items to humans", highlight=False)
    if d.outside_sample:
        err.print(f"[yellow]warning:[/] {d.outside_sample} submitted human ratings are of items not in {study.sample} "
                  "and were not used", highlight=False)
    items = d.escalated()
    if dry:
        console.print(f"dry run: {len(items)} items would be escalated; nothing written or pushed", highlight=False)
        return
    d.write(study.decisions)
    console.print(f"{study.decisions}: {len(d.table)} decisions, {len(items)} items escalated", highlight=False)
    study, rs, client = _annotation(study_dir)
    cfg = study.config.annotation
    try:
        report = push_escalated(client, read_sample(study.sample), items, rs, study.config.name,
                                RecordMap(study.argilla_dir / RECORD_MAP),
                                FormOptions(cfg.min_submitted, cfg.revision_question, cfg.comment_question))
    except (PushError, RecordMapError) as exc:
        fail(str(exc))
    for ds in report.datasets:
        console.print(f"{ds.workspace}/{ds.name}: {ds.items} items, {ds.added} added, {ds.updated} updated, "
                      f"{ds.unchanged} unchanged", highlight=False)
    console.print(f"escalated to {escalation_study(study.config.name)}-<language>-<family>: {report.added} new items",
                  highlight=False)


def _tally(frame: pd.DataFrame, column: str) -> str:
    """Rows per value of `column`: ``hi: 3, ta: 1``."""
    return ", ".join(f"{k}: {n}" for k, n in frame[column].value_counts().sort_index().items())


@app.command("export")
def export_cmd(
    study_dir: Path = typer.Argument(..., help="The study directory (its sample, ratings and revisions)."),
    repo: Optional[str] = typer.Option(None, "--push-to-hub", metavar="REPO", help="Also upload the datasets to the "
                                       "Hugging Face Hub as REPO-accepted and REPO-revisions (needs HF_TOKEN)."),
) -> None:
    """Export accepted items and revision pairs as Hugging Face datasets in STUDY_DIR/export (rule: `export:` in kasauti.yaml)."""
    import rubrics
    import studytables as st
    from training.export import ExportError, NoAcceptedItems, export, push_to_hub

    study = _study(study_dir)
    try:
        rs = rubrics.load_rubric_set(study.config.rubric, require_judge=False)
    except rubrics.RubricError as exc:
        fail(str(exc))
    config = study.config.export
    if config is None:
        metric = rs.families[0].metrics[0]
        fail(f"{study.config_path}: no `export:` section, so no acceptance rule; add one, e.g. `export: {{accept: "
             f"[{{metric: {metric.name}, at_least: {metric.human.max:g}}}]}}` (README.md, 6. Export)")
    try:
        config.check(rs)
    except ValueError as exc:
        fail(f"{study.config_path}: {exc}")
    try:
        result = export(study.root, config, rs, study.config.name)
    except NoAcceptedItems as exc:
        fail(f"{exc}; nothing written (a previous export in {study.root / 'export'} is kept): relax the `export:` rule "
             "in kasauti.yaml or pull more ratings")
    except (ExportError, OSError) as exc:
        fail(str(exc))
    accepted = st.read(st.EXPORT_ACCEPTED, study.root / st.EXPORT_ACCEPTED.file)
    console.print(f"{result.path / 'accepted'}: {result.accepted} accepted items; per language: "
                  f"{_tally(accepted, 'language')}; decided by {_tally(accepted, 'decided_by')}", highlight=False)
    if result.rejected:
        console.print("  not accepted: " + "; ".join(f"{why}: {n}" for why, n in result.rejected.items()), highlight=False)
    if result.revisions:
        pairs = st.read(st.EXPORT_REVISIONS, study.root / st.EXPORT_REVISIONS.file)
        console.print(f"{result.path / 'revisions'}: {result.revisions} revision pairs; per language: "
                      f"{_tally(pairs, 'language')}; by source: {_tally(pairs, 'source')}", highlight=False)
    if result.revisions_not_exported:
        console.print("  revisions not exported: " + "; ".join(
            f"{why}: {n}" for why, n in result.revisions_not_exported.items()), highlight=False)
    for note in result.notes:
        console.print(f"  note: {note}", highlight=False)
    for name in ("accepted", "revisions") if repo else ():
        if (result.path / name).is_dir():
            try:
                url = push_to_hub(result.path / name, f"{repo}-{name}")
            except ExportError as exc:
                fail(str(exc))
            console.print(f"pushed {result.path / name} to {url}", highlight=False)


train_app = typer.Typer(help="Train models on the study's data (the booster, a student).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _train(study_dir: Path, section: str, run, errors: tuple[type[Exception], ...], what: str) -> None:
    """Run `run(cfg, study)` on the study's `training.<section>` and print what the training did (`what`: a
    template over its metrics saying what it trained on)."""
    study = _study(study_dir)
    cfg = getattr(study.config.training, section)
    if cfg is None:
        fail(f"{study.config_path}: no `training: {section}:` section; add one, e.g. `training: {{{section}: {{base: "
             "smollm2}}}}` (README.md)")
    try:
        result = run(cfg, study)
    except errors as exc:
        fail(str(exc))
    m = result.metrics
    console.print(f"{result.out_dir}: {what.format(**m)}, {m['eval_examples']} held out, "
                  f"{len(m['set_aside_too_long'])} set aside (too long); {m['global_step']} steps; eval loss "
                  f"{m['eval_loss_before']} -> {m['eval_loss_after']}", highlight=False)


@train_app.command("booster")
def train_booster_cmd(
    study_dir: Path = typer.Argument(..., help="The study directory (`training.booster:` in its kasauti.yaml)."),
    pairs: str = typer.Option("export", "--pairs", help="`export` (the study's export/revisions) or `midb:FILE`."),
) -> None:
    """Train a booster on revision pairs into STUDY_DIR/booster (resumes a killed run there)."""
    from training import MidbError, TrainingError, train_booster
    from training.train import booster_pairs

    _train(study_dir, "booster", lambda cfg, study: train_booster(cfg, booster_pairs(study.root, pairs), study.root / "booster"),
           (TrainingError, MidbError, OSError), "{train_examples} training pairs")


@train_app.command("sft")
def train_sft_cmd(
    study_dir: Path = typer.Argument(..., help="The study directory (`training.sft:` in its kasauti.yaml)."),
) -> None:
    """Fine-tune a student on the exported accepted items into STUDY_DIR/student (resumes a killed run there)."""
    import studytables as st
    from training import TrainingError, train_sft

    _train(study_dir, "sft", lambda cfg, study: train_sft(cfg, study.root), (TrainingError, st.TableError, OSError),
           "{accepted_items} accepted items ({boosted_items} boosted, {original_items} as accepted): {train_examples} training")


@app.command("eval")
def eval_cmd(study_dir: Path = typer.Argument(..., help="The study directory (a student from `kasauti train sft`).")) -> None:
    """Evaluate the student against its base model (lm-evaluation-harness and the pairwise judge) into STUDY_DIR/eval."""
    import rubrics
    import studytables as st
    from judge.backends import FatalError
    from judge.progress import RichProgress
    from training.evaluate import eval_judges, evaluate_study

    study = _study(study_dir)
    cfg = study.config.training.eval
    try:
        rs = rubrics.load_rubric_set(study.config.rubric)
        for j in eval_judges(cfg, study.config.judges):
            warning = j.key_warning()
            if warning:
                err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        result = evaluate_study(study.root, cfg, rs, study.config.judges, progress=RichProgress(console))
    except (FatalError, ValueError, OSError) as exc:  # ValueError: EvalError, TrainingError, TableError, RubricError
        fail(str(exc))
    console.print(f"prompts: {_counts(result.prompts)}; responses: {result.generated} generated, {result.cached} cached; "
                  f"lm-evaluation-harness: {'reused' if result.lm_eval_cached else 'run'}", highlight=False)
    if result.set_aside:
        console.print(f"  benchmark records not used: {_counts(result.set_aside)}", highlight=False)
    for s in result.summaries:
        console.print(f"  judge {s.judge}: {s.planned} calls, {s.cached} cached, {s.ok} ok, {s.failed} failed, "
                      f"{s.unparseable} unparseable", highlight=False)
    table = st.read(st.EVAL, result.path)
    for r in table[table["metric"] == "win_rate"].itertuples(index=False):
        console.print(f"  {r.benchmark} / {r.language} ({r.judge}, {r.criterion}): student wins {r.value:.3f} over base "
                      f"(95% CI {r.ci_low:.3f}-{r.ci_high:.3f}, ties half, {r.n} comparisons)", highlight=False)
    console.print(f"{result.path}: {result.rows} rows", highlight=False)
    if any(s.failed for s in result.summaries):
        err.print("judge calls failed (reasons in eval/judge_ledger.sqlite): run `kasauti eval` again to call them again",
                  highlight=False)
        raise typer.Exit(1)


def _counts(counts: dict) -> str:
    return ", ".join(f"{k}: {n}" for k, n in counts.items())


@app.command("boost")
def boost_cmd(
    study_dir: Path = typer.Argument(..., help="The study directory."),
    booster: Path = typer.Option(..., "--booster", help="The booster (what `kasauti train booster` wrote)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A data file the intake reads (columns as in "
                                        "kasauti.yaml); default: the study's sample."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens", min=1),
    backend: str = typer.Option("transformers", "--backend", help="transformers (CPU) or vllm (GPU)."),
) -> None:
    """Rewrite the study's items with the booster into STUDY_DIR/boosted.parquet (resumable: boost.sqlite)."""
    import studytables as st
    from training.boost import BoostError, GenerationParams, boost, read_items, sample_items

    study = _study(study_dir)
    try:
        if data is not None:
            items = read_items(data, study.config.data.columns)
        elif study.sample.is_file():
            items = sample_items(st.read(st.SAMPLE, study.sample))
        else:
            fail(f"{study.sample}: no sample; run `kasauti sample {study_dir}` or give --data FILE")
        result = boost(booster, items, study.root / st.BOOSTED.file, batch_size=batch_size, backend=backend,
                       params=GenerationParams(max_new_tokens=max_new_tokens))
    except (BoostError, st.TableError, OSError) as exc:
        fail(str(exc))
    console.print(f"{result.path}: {result.boosted} boosted, {result.unparseable} unparseable (status and raw text "
                  f"in {result.ledger}), {result.cached} cached, {result.generated} generated", highlight=False)


def main() -> None:
    app()
