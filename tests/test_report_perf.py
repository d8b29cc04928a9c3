"""The report at scale: statistics computed for many cells together, lazy heavy imports, a linear page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reports.agreement import Scale, analyse_cell, analyse_cells
from tests.judge_support import modules_loaded

ROOT = Path(__file__).resolve().parents[1]


def _same(a, b):
    """Equal entries; floats to 1e-12 (sums over the same patterns in another order of summation)."""
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            _same(x, y)
        elif isinstance(x, float) and isinstance(y, float):
            assert x == pytest.approx(y, rel=1e-12, abs=1e-12), key
        else:
            assert x == y, key


@pytest.mark.parametrize("level,k", [("ordinal", 5), ("nominal", 3), ("nominal", 2)])
def test_cells_together_equal_cells_one_by_one(level, k):
    """analyse_cells over overlapping subsets (facet levels, tiny cells, cells with 1-3 humans per item)
    gives exactly what analyse_cell gives on each subset in turn, bootstrap draws included."""
    rng = np.random.default_rng(11)
    n = 400
    truth = rng.integers(0, k, n)
    humans = np.zeros((n, k), int)
    for i in range(n):
        raters = rng.integers(0, 4)  # 0..3 human ratings
        np.add.at(humans[i], np.clip(truth[i] + rng.integers(-1, 2, raters), 0, k - 1), 1)
    judge = np.where(rng.random(n) < 0.15, -1, np.clip(truth + rng.integers(0, 2, n), 0, k - 1))
    lang, task = rng.integers(0, 4, n), rng.integers(0, 3, n)
    masks = [np.ones(n, bool), *(lang == v for v in range(4)), *(task == v for v in range(3)), np.arange(n) < 3,
             humans.sum(1) == 3, rng.random(n) < 0.5]
    scale = Scale(tuple(float(v) for v in range(k)), level)
    together = analyse_cells(humans, judge, masks, scale, 200, np.random.default_rng(3), 10, 2)
    one_rng = np.random.default_rng(3)
    for mask, (stats, extras) in zip(masks, together):
        alone_stats, alone_extras = analyse_cell(humans[mask], judge[mask], scale, 200, one_rng, 10, 2)
        _same(stats, alone_stats)
        assert extras == alone_extras


def test_import_reports_loads_no_heavy_library():
    """`import reports` (and the report's entry points) load neither sklearn, scipy, plotly nor openai."""
    assert modules_loaded("import reports; from reports import build_report, prepare, read_long, ReportConfig",
                          ("sklearn", "scipy", "plotly", "openai")) == []


def test_the_reports_serial_path_leaves_scipy_stats_to_the_decisions_thread():
    """Importing the sections and the panel (the report's serial path before its decisions thread) loads no
    scipy.stats: its ~1 s import happens in the decisions thread, beside the calibration and statistics."""
    assert modules_loaded("import reports.build, reports.sections, reports.panel, reports.calibration", ("scipy.stats",)) == []


def test_rubric_set_name_is_escaped_in_the_page(tmp_path):
    """Every text from the input is escaped on the page, the rubric set's name too."""
    import rubrics
    from reports import ReportConfig, build_report
    from tests.test_report_verdicts import synthetic

    rs = rubrics.load_rubric_set("pariksha").model_copy(update={"name": "<img src=x onerror=alert(1)>"})
    page = build_report(synthetic(np.random.default_rng(2), n=40), rs, tmp_path, config=ReportConfig(n_boot=0))["html"].read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_study_tables_are_read_through_their_schema(tmp_path):
    """from_study reads sample/ratings/judgments through studytables: a missing column is named as such."""
    import pandas as pd

    from reports import from_study

    pd.DataFrame({"item_id": ["i1"], "language": "hi", "length_bin": [1]}).to_parquet(tmp_path / "sample.parquet")
    pd.DataFrame({"item_id": ["i1"], "metric": "task_quality", "rater": "a", "rater_kind": "human",
                  "score": [1.0]}).to_parquet(tmp_path / "ratings.parquet")
    with pytest.raises(ValueError, match=r"sample.parquet: missing column\(s\) \[.task.\]; sample.parquet needs"):
        from_study(tmp_path / "sample.parquet", tmp_path / "ratings.parquet", None)


def test_report_csv_is_written_through_its_schema(tmp_path):
    """report.csv is studytables' REPORT_CELLS table: it reads back through the schema with its types."""
    import rubrics
    import studytables
    from reports import ReportConfig, build_report
    from tests.test_report_verdicts import synthetic

    paths = build_report(synthetic(np.random.default_rng(2), n=40), rubrics.load_rubric_set("pariksha"), tmp_path,
                         config=ReportConfig(n_boot=10))
    cells = studytables.read(studytables.REPORT_CELLS, paths["csv"])
    assert cells["small"].dtype == bool and cells["calibrated"].dtype == bool and cells["n_items"].dtype == "int64"
    assert list(cells.columns) == studytables.REPORT_CELLS.names


def _sklearn_cross_validated(x, y, levels, folds, seed):
    """The reference: scikit-learn's KFold and IsotonicRegression, rounded to the nearest level."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import KFold

    pred = np.empty(len(x))
    for tr, te in KFold(min(folds, len(x)), shuffle=True, random_state=seed).split(x):
        p = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x[tr], y[tr]).predict(x[te])
        pred[te] = levels[np.abs(p[:, None] - levels[None, :]).argmin(1)]
    return pred


@pytest.mark.parametrize("seed", range(4))
def test_calibration_equals_scikit_learn_isotonic_regression(seed):
    """Out-of-fold isotonic calibration equals scikit-learn's (same folds, same fit), without importing it."""
    from reports.calibration import cross_validated

    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 300))
    x = rng.integers(0, 5, n).astype(float) + (rng.random(n) * 0.5 if seed % 2 else 0)  # ties, or expected scores
    y = np.clip(x / 2 + rng.normal(0, 0.7, n), 0, 2).round(1)
    levels = np.array([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(cross_validated(x, y, levels, True, 5, seed), _sklearn_cross_validated(x, y, levels, 5, seed))


def test_calibrating_does_not_import_scikit_learn():
    code = ("import sys, numpy as np; from reports.calibration import cross_validated; "
            "x = np.arange(40.0) % 5; cross_validated(x, x / 2, np.array([0.0, 1.0, 2.0]), True, 5, 0); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr


def test_figures_use_the_white_template_and_leave_plotlys_default_alone(tmp_path):
    import plotly.io as pio
    import rubrics
    from reports import ReportConfig, build_report
    from tests.test_report_verdicts import synthetic

    before = pio.templates.default
    page = build_report(synthetic(np.random.default_rng(2), n=40), rubrics.load_rubric_set("pariksha"), tmp_path,
                        config=ReportConfig(n_boot=0))["html"].read_text()
    assert page.count('"plot_bgcolor":"white"') >= 5 and pio.templates.default == before


def test_report_with_many_metrics_builds(tmp_path):
    """A rubric of 25 metrics (Updesh-sized) gets its page: the confusion-matrix panels fit side by side."""
    import pandas as pd
    from reports import ReportConfig, build_report
    from rubrics import RubricSet

    scale = {"levels": [{"value": v, "label": f"l{v}", "anchor": f"level {v}"} for v in range(3)]}
    metrics = [{"name": f"m{i:02d}", "title": f"metric {i}", "description": "d", "measurement": "ordinal", "human": scale}
               for i in range(25)]
    rs = RubricSet.model_validate({"name": "many", "version": "1", "title": "t", "description": "d", "source": "s",
                                   "guidelines": "g", "families": [{"name": "all", "title": "all", "tasks": ["*"], "metrics": metrics}]})
    rng = np.random.default_rng(0)
    rows = [(f"i{i}", m["name"], rater, kind, float(rng.integers(0, 3)), "bn", "qa", 1)
            for i in range(12) for m in metrics for rater, kind in (("h1", "human"), ("h2", "human"), ("j", "judge"))]
    df = pd.DataFrame(rows, columns=["item_id", "metric", "rater", "rater_kind", "score", "language", "task", "length_bin"])
    page = build_report(df, rs, tmp_path, config=ReportConfig(n_boot=0))["html"].read_text()
    assert "metric 24" in page


def test_summed_parts_are_contiguous_blocks_with_the_resamples_innermost():
    """_sums lays each part out as one block with the resamples (rows of weights) innermost, so the statistics'
    elementwise work over a part reads contiguous memory (not a strided slice of a wide product); values unchanged."""
    from reports.agreement import _sums

    rng = np.random.default_rng(0)
    parts = {"coinc": rng.random((7, 3, 3)), "n": rng.random(7), "pi": rng.random((7, 3))}
    weights = rng.integers(0, 5, (50, 7)).astype(float)
    out = _sums(parts, weights)
    for name, arr in parts.items():
        np.testing.assert_allclose(out[name], np.tensordot(weights, arr, 1), rtol=1e-13)
        assert np.moveaxis(out[name], 0, -1).flags.c_contiguous, name



def test_short_axis_sums_keep_the_resamples_innermost():
    """stats._sum and _cumsum over a category axis keep the layout of the summed parts (resamples innermost), so
    every addition reads and writes contiguous memory; values as numpy's."""
    from reports.stats import _cumsum, _sum

    rng = np.random.default_rng(1)
    table = np.moveaxis(rng.random((4, 4, 300)), -1, 0)  # (B, K, K) with B innermost, as _sums lays it out
    for axis in (-1, -2):
        out, cum = _sum(table, axis), _cumsum(table, axis)
        np.testing.assert_allclose(out, table.sum(axis), rtol=1e-15)
        np.testing.assert_allclose(cum, np.cumsum(table, axis), rtol=1e-15)
        assert np.moveaxis(out, 0, -1).flags.c_contiguous and np.moveaxis(cum, 0, -1).flags.c_contiguous, axis

def test_a_judges_intervals_do_not_depend_on_the_other_metrics_and_judges():
    """Each metric x judge draws its resamples from its own stream (seed, metric, judge; a calibrated judge shares
    its raw judge's): removing other metrics and judges from the table leaves its rows, CIs included, unchanged
    (and the metrics can be analysed in parallel)."""
    import pandas as pd
    import rubrics
    from reports.analysis import analyse
    from tests.test_report_verdicts import synthetic

    one = synthetic(np.random.default_rng(4), n=60)
    other_judge = one[one["rater"] == "j"].assign(rater="k", score=lambda d: (d["score"] + 1) % 3)
    both = pd.concat([one, other_judge, one.assign(metric="linguistic_acceptability")], ignore_index=True)
    specs = rubrics.load_rubric_set("pariksha").metrics
    alone, _ = analyse(one, specs, n_boot=50, seed=3)
    together, _ = analyse(both, specs, n_boot=50, seed=3)
    mine = [r for r in together if r["metric"] == "task_quality" and r["judge"] == "j"]
    assert len(mine) == len(alone) and mine == alone



def test_a_judge_and_its_calibrated_version_share_their_resamples():
    """A raw judge and its calibrated version rate the same items and are resampled together (same item draws):
    a calibrated judge that gives the raw judge's scores gets the raw judge's rows, CIs included, and the raw
    judge's rows are those it gets alone."""
    import pandas as pd
    import rubrics
    from reports.analysis import analyse
    from reports.calibration import CALIBRATED_SUFFIX
    from tests.test_report_verdicts import synthetic

    one = synthetic(np.random.default_rng(4), n=60)
    twin = one[one["rater"] == "j"].assign(rater="j" + CALIBRATED_SUFFIX)
    specs = rubrics.load_rubric_set("pariksha").metrics
    alone, _ = analyse(one, specs, n_boot=50, seed=3)
    rows, _ = analyse(pd.concat([one, twin], ignore_index=True), specs, n_boot=50, seed=3)
    raw = [r for r in rows if r["judge"] == "j"]
    calibrated = [r for r in rows if r["judge"] == "j" + CALIBRATED_SUFFIX]
    assert raw == alone
    assert [{**r, "judge": "j", "calibrated": False} for r in calibrated] == raw
    assert any(r["ci_low"] is not None and r["ci_low"] != r["ci_high"] for r in raw)


@pytest.mark.parametrize("level,k", [("ordinal", 5), ("nominal", 2)])
def test_judges_analysed_together_equal_each_judge_alone(level, k):
    """analyse_judges resamples the judges' joint patterns once: each judge's values (to 1e-12), n and extras are
    those it gets alone; the first judge's intervals too when the others' scores follow from its item pattern (a
    calibration of its scores), and otherwise its intervals come from the same kind of draws (same widths, roughly)."""
    from reports.agreement import analyse_judges

    rng = np.random.default_rng(5)
    n = 500
    truth = rng.integers(0, k, n)
    humans = np.zeros((n, k), int)
    for i in range(n):
        np.add.at(humans[i], np.clip(truth[i] + rng.integers(-1, 2, rng.integers(0, 4)), 0, k - 1), 1)
    judge = np.where(rng.random(n) < 0.1, -1, np.clip(truth + rng.integers(0, 2, n), 0, k - 1))
    follows = np.where(judge >= 0, np.minimum(judge + humans.sum(1) % 2, k - 1), -1)  # a function of the pattern
    noisy = np.where(judge >= 0, rng.integers(0, k, n), -1)
    masks = [np.ones(n, bool), truth == 0, np.arange(n) % 3 == 1]
    scale = Scale(tuple(float(v) for v in range(k)), level)
    alone = {name: analyse_cells(humans, j, masks, scale, 300, np.random.default_rng(9), 10, 1)
             for name, j in (("judge", judge), ("follows", follows), ("noisy", noisy))}
    for others in (["follows"], ["noisy"], ["follows", "noisy"]):
        together = analyse_judges(humans, [judge, *(dict(follows=follows, noisy=noisy)[o] for o in others)], masks,
                                  scale, 300, np.random.default_rng(9), 10, 1)
        assert len(together) == 1 + len(others)
        for name, cells in zip(["judge", *others], together):
            for (stats, extras), (ref, ref_extras) in zip(cells, alone[name]):
                assert extras == ref_extras
                for stat, e in stats.items():
                    assert e["n_items"] == ref[stat]["n_items"], (name, stat)
                    assert e["value"] == pytest.approx(ref[stat]["value"], rel=1e-12, abs=1e-12), (name, stat)  # order of summation
                    if name == "judge" and others == ["follows"]:
                        assert e == ref[stat], stat
                    elif e["ci_low"] is not None and ref[stat]["ci_high"] > ref[stat]["ci_low"]:
                        ratio = (e["ci_high"] - e["ci_low"]) / (ref[stat]["ci_high"] - ref[stat]["ci_low"])
                        assert 0.5 < ratio < 2, (name, stat, ratio)

def _long_ratings(seed: int = 5):
    """Shuffled long ratings: 3 judges and 0-3 humans per item x metric, a length bin and a source model."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for metric in ("m1", "m0"):
        for i in range(60):
            meta = {"item_id": f"i{i}", "metric": metric, "language": f"l{i % 3}", "length_bin": i % 4,
                    "source_model": None if i % 7 == 0 else f"s{i % 2}"}
            rows += [{**meta, "rater": f"j{j}", "rater_kind": "judge", "score": float(rng.integers(0, 5))} for j in (2, 0, 1)]
            rows += [{**meta, "rater": f"h{h}", "rater_kind": "human", "score": float(rng.integers(0, 5))}
                     for h in range(rng.integers(0, 4))]
    return pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)


def test_decision_pairs_and_item_scores_equal_string_key_merges():
    """The decisions' integer-code joins give the rows the pandas merges on (item_id, metric) give, in
    the same order per judge x metric (the bootstrap's draws depend on it)."""
    from reports.sections import _item_keys, _item_scores, _pairs

    clean = _long_ratings()
    keys = _item_keys(clean)
    humans = clean[clean["rater_kind"] == "human"]
    judged = clean[clean["rater_kind"] == "judge"]
    y = humans.groupby(["metric", "item_id"])["score"].mean().rename("y")
    want = judged.join(y, on=["metric", "item_id"])["y"].to_numpy()
    np.testing.assert_array_equal(_item_scores(clean, keys)["y"].to_numpy(), want)

    pairs, blocks = _pairs(clean, keys)
    merged = judged.merge(humans[["item_id", "metric", "score"]].rename(columns={"score": "human"}), on=["item_id", "metric"])
    expected = list(merged.groupby(["rater", "metric"], sort=True))
    assert [(j, m) for j, m, _ in blocks] == [key for key, _ in expected]
    for (_, _, rows), (_, sub) in zip(blocks, expected):
        got = pairs.iloc[rows]
        assert got["item_id"].astype(str).tolist() == sub["item_id"].tolist()
        for col, ref in (("judge", "score"), ("human", "human"), ("length_bin", "length_bin"), ("source_model", "source_model")):
            assert got[col].tolist() == sub[ref].tolist(), col
    assert len(pairs) == len(merged)


def test_records_equal_pandas_records_with_nulls():
    """analysis.records: pandas' records with every missing value (NaN, NA, None) as None, Python types kept."""
    import pandas as pd

    from reports.analysis import records

    frame = pd.DataFrame({"f": [0.5, np.nan, 2.0], "i": [1, 2, 3], "n": pd.array([1, None, 3], dtype="Int64"),
                          "s": pd.array(["a", None, "c"], dtype="str"), "b": [True, False, True],
                          "o": [[1.0, 2.0], None, "x"]})
    want = frame.astype(object).where(frame.notna(), None).to_dict("records")
    got = records(frame)
    assert got == want
    assert [[type(v) for v in r.values()] for r in got] == [[type(v) for v in r.values()] for r in want]
    assert records(pd.DataFrame()) == []


def test_judges_sharing_items_equal_a_grouped_count_of_distinct_judges():
    """judges_sharing_items by integer codes names the judges a groupby nunique on (metric, item_id) names;
    a judge alone on its items is no panel member."""
    import pandas as pd

    from reports.sections import judges_sharing_items

    clean = _long_ratings()
    alone = clean[clean["rater"] == "j0"].assign(rater="solo", item_id=lambda d: d["item_id"] + "-solo")
    clean = pd.concat([clean, alone], ignore_index=True)
    judged = clean[clean["rater_kind"] == "judge"]
    shared = judged.groupby(["metric", "item_id"])["rater"].transform("nunique") >= 2
    assert judges_sharing_items(clean) == sorted(set(judged.loc[shared, "rater"])) == ["j0", "j1", "j2"]


def test_row_codes_equal_a_multiindex_factorize():
    """ppi.row_codes: the codes (first-appearance order) pandas gives the rows' tuples."""
    import pandas as pd

    from reports.ppi import row_codes

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.choice(["x", "y", "z"], 500), "b": rng.integers(0, 7, 500),
                          "c": pd.array(rng.choice(["p", "q"], 500), dtype="str")})
    want = pd.MultiIndex.from_frame(frame).factorize()[0]
    np.testing.assert_array_equal(row_codes([frame[c] for c in frame.columns]), want)
    np.testing.assert_array_equal(row_codes([frame["b"]]), pd.factorize(frame["b"])[0])


def test_row_codes_keep_missing_values_apart_and_survive_wide_products():
    """ppi.row_codes gives a missing value its own code (no collision with another tuple) and stays exact
    when the columns' cardinalities multiply past int64 (many wide columns)."""
    import pandas as pd

    from reports.ppi import row_codes

    codes = row_codes([pd.Series(["p", "q", "q", "p"]), pd.Series(["u", "v", None, "v"])])
    assert len(set(codes.tolist())) == 4  # (q, missing) is not (p, v)
    rng = np.random.default_rng(4)
    wide = pd.DataFrame({f"c{i}": rng.integers(0, 1000, 3000) for i in range(8)})  # 1000**8 > 2**63
    want = pd.MultiIndex.from_frame(wide).factorize()[0]
    np.testing.assert_array_equal(row_codes([wide[c] for c in wide.columns]), want)


def _grouped_calibration(ratings, specs, min_items, min_items_language):
    """The reference: calibrate by pandas groupings on the string keys (human mean per metric x item, then per
    judge x metric and language, in sorted order)."""
    import pandas as pd

    from reports.calibration import CALIBRATED_SUFFIX, cross_validated, judge_input

    mean = ratings[ratings["rater_kind"] == "human"].groupby(["metric", "item_id"])["score"].mean()
    judges = ratings[(ratings["rater_kind"] == "judge") & ~ratings["rater"].str.endswith(CALIBRATED_SUFFIX)]
    rows, fits = [], []
    for (judge, metric), jr in judges.groupby(["rater", "metric"], sort=True):
        jr = jr[pd.MultiIndex.from_arrays([jr["metric"], jr["item_id"]]).isin(mean.index)]
        if len(jr) < min_items:
            fits.append((judge, metric, "all", len(jr)))
            continue
        levels = np.array(specs[metric].human.values, float)
        x = judge_input(jr).to_numpy()
        y = mean.loc[list(zip(jr["metric"], jr["item_id"]))].to_numpy()
        pred = cross_validated(x, y, levels, True, 5, 0)
        fits.append((judge, metric, "all", len(jr)))
        for lang in sorted(jr["language"].dropna().unique()):
            pos = np.flatnonzero((jr["language"] == lang).to_numpy())
            if len(pos) >= min_items_language:
                pred[pos] = cross_validated(x[pos], y[pos], levels, True, 5, 0)
            fits.append((judge, metric, lang, len(pos)))
        rows.append(jr.assign(rater=judge + CALIBRATED_SUFFIX, score=pred, probs=None))
    return pd.concat(rows, ignore_index=True), fits


def test_calibrate_by_codes_equals_grouped_calibration():
    """calibrate's integer-coded row finding gives the rows, scores and fits pandas groupings on the string keys
    give: judges in sorted order, items without a human left out, too-small judge x metric and language cells."""
    import pandas as pd
    import rubrics

    from reports.calibration import calibrate

    clean = _long_ratings().assign(raw_score=np.nan, probs=None)
    clean.loc[clean.index[::5], "probs"] = '{"1": 0.5, "3": 0.5}'
    done = clean[clean["rater"] == "j0"].assign(rater="j0 · calibrated")  # already calibrated rows: not refitted
    clean = pd.concat([clean, done], ignore_index=True)
    spec = rubrics.load_rubric_set("pariksha").metrics["task_quality"]
    specs = {"m0": spec, "m1": spec}
    notes = set()
    for min_items in (30, 45):
        cal, info = calibrate(clean, specs, min_items=min_items, min_items_language=15)
        want, fits = _grouped_calibration(clean, specs, min_items, 15)
        pd.testing.assert_frame_equal(cal, want)
        assert [(i["judge"], i["metric"], i["language"], i["n_items"]) for i in info] == fits
        notes |= {i["note"].split(":")[0] for i in info}
    assert notes == {"fitted on this language", "pooled over languages", "pooled map used", "not calibrated"}


def _chart_json(html: str) -> list:
    """The data, layout and config plotly.js gets in a chart's HTML."""
    import json

    dec, i, out = json.JSONDecoder(), html.index("[", html.index("Plotly.newPlot")), []
    for _ in range(3):
        while html[i] in " ,\n":
            i += 1
        value, i = dec.raw_decode(html, i)
        out.append(value)
    return out


def test_figure_dicts_equal_plotlys_figures():
    """The page's figures written as plain dicts (html._panels, _in_panel, _axis, _colorscale, _Charts.add) give
    plotly.js the JSON plotly's own figures give (make_subplots, add_trace, update_axes, the white template)."""
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    from reports.html import _axis, _Charts, _colorscale, _in_panel, _panels

    titles = ["one", "two", "three"]
    before = pio.templates.default
    pio.templates.default = "plotly_white"  # as render_html sets it
    try:
        fig = make_subplots(rows=1, cols=3, subplot_titles=titles, shared_yaxes=True, horizontal_spacing=0.05)
        mine = _panels(titles, shared_yaxes=True, spacing=0.05)
        for col in (1, 3):
            fig.add_trace(go.Heatmap(z=[[1, 2]], colorscale="RdYlGn", text=[[1, 2]], texttemplate="%{text}"), row=1, col=col)
            mine["data"].append(_in_panel({"type": "heatmap", "z": [[1, 2]], "colorscale": _colorscale("RdYlGn"),
                                           "text": [[1, 2]], "texttemplate": "%{text}"}, col))
            fig.update_xaxes(title_text="judge", row=1, col=col)
            _axis(mine["layout"], "xaxis", col)["title"] = {"text": "judge"}
        fig.update_layout(title="t", height=300, margin=dict(l=380))
        mine["layout"].update(title={"text": "t"}, height=300, margin={"l": 380})
        charts = _Charts()
        charts.count = 1  # plotly.js already on the page
        assert _chart_json(charts.add(mine, "")["html"]) == _chart_json(charts.add(fig, "")["html"])
    finally:
        pio.templates.default = before


def test_build_report_logs_every_phase(tmp_path, caplog):
    """build_report logs each phase's time at DEBUG (benchmarks/bench_report.py reads them): the panel of judges,
    the calibrated rows joined on, and the frame of cells too, so no part of the report goes untimed."""
    import logging

    import pandas as pd
    import rubrics
    from reports import ReportConfig, build_report
    from tests.test_report_verdicts import synthetic

    one = synthetic(np.random.default_rng(2), n=40)
    other = one[one["rater_kind"] == "judge"].assign(rater="k")  # a second judge on the same items: a panel
    with caplog.at_level(logging.DEBUG, logger="reports.build"):
        build_report(pd.concat([one, other], ignore_index=True), rubrics.load_rubric_set("pariksha"), tmp_path,
                     config=ReportConfig(n_boot=0))
    phases = [r.args[0] for r in caplog.records if r.name == "reports.build" and r.msg.startswith("phase")]
    beside = ["decisions", "system"]  # in their own thread, beside calibration .. verdicts: logged in between
    assert [p for p in phases if p not in beside] == ["join", "panel", "calibration", "calibrated rows", "statistics",
                                                      "cells", "verdicts", "pairwise", "html", "write"]
    assert [p for p in phases if p in beside] == beside
    assert phases.index("panel") < phases.index("decisions") and phases.index("system") < phases.index("pairwise")


@pytest.mark.parametrize("how", ["mean", "majority"])
def test_panel_rows_equal_grouped_panel(how):
    """panel_rows by integer codes gives the rows a groupby per metric and item_id (sorted) gives: the judges' mean
    (or majority) score, each column's first non-null value, items not scored by every judge left out and counted."""
    import pandas as pd
    import rubrics

    from reports.agreement import consensus
    from reports.calibration import judge_input
    from reports.panel import panel_rows

    clean = _long_ratings().assign(raw_score=np.nan, probs=None, model="m", prompt_version="1", status="submitted")
    clean = clean[~((clean["rater"] == "j1") & (clean["item_id"] == "i3"))]  # i3: not scored by every judge
    clean.loc[(clean["rater"] == "j2").to_numpy(), "source_model"] = None  # first non-null: another judge's row
    clean["score"] = clean["score"].clip(0, 2)
    spec = rubrics.load_rubric_set("pariksha").metrics["task_quality"]
    specs = {"m0": spec, "m1": spec}
    got, info = panel_rows(clean, ["j0", "j1", "j2"], specs, how)

    rows = clean[clean["rater_kind"] == "judge"].assign(expected=lambda d: judge_input(d).to_numpy())
    rows = rows[rows.groupby(["metric", "item_id"])["rater"].transform("nunique") == 3]
    parts, ties = [], 0
    for metric, sub in rows.groupby("metric", sort=True):
        values = np.asarray(spec.human.values, float)
        per_item = sub.groupby("item_id", sort=True)
        score = values[np.abs(per_item["score"].mean().to_numpy()[:, None] - values).argmin(1)]
        raw = per_item["expected"].mean().to_numpy()
        if how == "majority":
            counts = per_item["score"].apply(lambda s: np.bincount(np.searchsorted(values, s), minlength=len(values)))
            top = consensus(np.stack(counts.to_list()), "nominal")
            ties += int((top < 0).sum())
            score = raw = np.where(top >= 0, values[np.maximum(top, 0)], score)
        parts.append(per_item.first().reset_index().assign(score=score, raw_score=raw, probs=None, model=None, prompt_version=None))
    want = pd.concat(parts, ignore_index=True).assign(rater=f"panel ({how}: j0 + j1 + j2)", rater_kind="judge", status="submitted")
    pd.testing.assert_frame_equal(got, want[[c for c in clean.columns if c in want.columns]])
    assert info == {"items scored by every panel judge": len(want), "items left out: not scored by every panel judge": 2,
                    "items whose judges tied (majority): the mean rule decides": ties}
    assert how == "mean" or ties > 0
