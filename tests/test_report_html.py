"""The report page (issue 8): rendered from Jinja2 templates with autoescape, so no text from the data is
taken as markup, and its tables hold report.json's numbers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from reports import ImportReport, ReportConfig, build_report
from rubrics import RubricSet
from tests.test_report_cli import open_in_chromium

PAYLOAD = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>&"
PLAIN = "plain"


def study(mark: str) -> tuple[RubricSet, pd.DataFrame, pd.DataFrame, str]:
    """A small study whose every free text carries ``mark``: rubric set name (as the tests of the rubric name do,
    past its identifier check) and version, metric title, level labels, languages, tasks, judges, source models,
    item ids, an unused column, pairwise models and criterion; returns it with its comparisons and a title."""
    scale = {"levels": [{"value": v, "label": f"level {v} {mark}", "anchor": "a"} for v in range(3)]}
    metric = {"name": "quality", "title": f"Quality {mark}", "description": "d", "human": scale}
    rs = RubricSet.model_validate({"name": "html", "version": f"1 {mark}", "title": "t", "description": "d", "source": "s",
                                   "guidelines": "g", "families": [{"name": "all", "title": "all", "tasks": ["*"],
                                                                    "metrics": [metric]}]})
    rs = rs.model_copy(update={"name": f"set {mark}"})
    rng = np.random.default_rng(0)
    models = [f"model {k} {mark}" for k in range(3)]
    rows = []
    for i in range(180):
        truth = int(rng.choice(3, p=[0.2, 0.3, 0.5]))
        item = {"item_id": f"item {i} {mark}", "metric": "quality", "language": [f"lang {mark}", "bn"][i % 2],
                "task": [f"task {mark}", "qa"][i // 2 % 2], "length_bin": 1 + i % 5, "source_model": models[i % 3]}
        for rater, kind, noise in (("h0", "human", 0.2), ("h1", "human", 0.2), ("h2", "human", 0.3),
                                   (f"judge {mark}", "judge", 0.3), ("judge2", "judge", 0.5)):
            score = truth if rng.random() > noise else int(rng.integers(0, 3))
            rows.append({**item, "rater": rater, "rater_kind": kind, "score": float(score)})
    rows.append({**rows[0], "rater": "h3", "score": 7.0})  # off the scale: an import issue naming the item
    ratings = pd.DataFrame(rows).assign(**{f"column {mark}": "x"})
    comparisons = []
    for p in range(30):
        for a, b in ((0, 1), (0, 2), (1, 2)):
            for rater, kind in (("h0", "human"), (f"judge {mark}", "judge")):
                comparisons.append({"pair_id": f"{p}-{a}{b}", "prompt_id": f"p{p}", "language": f"lang {mark}",
                                    "model_a": models[a], "model_b": models[b], "criterion": f"overall {mark}", "rater": rater,
                                    "rater_kind": kind, "outcome": "a" if rng.random() < 0.6 + 0.1 * (b - a) else "b",
                                    "shown_order": ["ab", "ba"][int(rng.integers(0, 2))], "status": "submitted",
                                    "length_a": int(rng.integers(50, 500)), "length_b": int(rng.integers(50, 500))})
    return rs, ratings, pd.DataFrame(comparisons), f"report {mark}"


def report(out, mark: str) -> tuple[str, dict]:
    """The page and report.json of :func:`study` with ``mark``; without a bootstrap, whose intervals (so the verdicts
    and their notes, hence the page's structure) depend on the judge's name, which seeds its random stream."""
    rs, ratings, comparisons, title = study(mark)
    paths = build_report(ratings, rs, out, import_report=ImportReport(source=f"ratings {mark}.csv"),
                         config=ReportConfig(n_boot=0, max_excluded_share=0), title=title, comparisons=comparisons)
    return paths["html"].read_text(encoding="utf-8"), json.loads(paths["json"].read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[str, dict]]:
    tmp = tmp_path_factory.mktemp("html")
    return {mark: report(tmp / name, mark) for name, mark in (("payload", PAYLOAD), ("plain", PLAIN))}


class Page(HTMLParser):
    """The parsed page: its tags (attributes included), visible text, script bodies, and per table its h2, its
    heading (the h2/h3/h4 before it) and rows of cell texts (a <br> as a line break)."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.scripts, self.headings, self.tables = [], [], [], [], []
        self._in, self._cell, self.h2 = None, None, ""
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style", "h2", "h3", "h4"):
            self._in, self._buf = tag, []
        elif tag == "table":
            self.tables.append((self.h2, self.headings[-1], []))
        elif tag == "tr":
            self.tables[-1][2].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag):
        if tag == self._in:
            text = "".join(self._buf)
            if tag == "script":
                self.scripts.append(text)
            elif tag != "style":
                self.headings.append(" ".join(text.split()))
                self.h2 = self.headings[-1] if tag == "h2" else self.h2
            self._in = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][2][-1].append("\n".join(" ".join(x.split()) for x in "".join(self._cell).split("\n")))
            self._cell = None

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)
        if self._in not in ("script", "style"):
            self.text.append(data)
            if self._cell is not None:
                self._cell.append(data)


def test_no_text_from_the_data_is_markup(pages):
    """Every data string carries <script>, an attribute break-out and '&': none comes out as markup; each reaches
    the page as text (or in plotly's JSON, which escapes < > /), and the page has the same structure as with plain names."""
    html, doc = pages[PAYLOAD]
    assert "<script>alert" not in html and "<img" not in html and "onerror=alert(2)>" not in html
    page, plain = Page(html), Page(pages[PLAIN][0])
    assert not [t for t, _ in page.tags if t == "img"] and not [a for _, attrs in page.tags for a in attrs if a.startswith("on")]
    outside_scripts = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
    assert not re.findall(r"&(?!(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);)", outside_scripts), "a bare '&' in the page"
    text = "".join(page.text) + " ".join(v or "" for _, attrs in page.tags for v in attrs.values())
    as_text = {"title": "report", "rubric set name": "set", "rubric set version": "v1", "metric title": "Quality", "language": "lang",
               "judge": "judge", "source model": "model 0", "item id (an import example)": "item 0",
               "unused column": "column", "pairwise criterion": "overall", "file path": "ratings"}
    missing = [what for what, prefix in as_text.items() if f"{prefix} {PAYLOAD}" not in text]
    assert not missing, f"not on the page as text: {missing}"
    scripts = "".join(page.scripts)
    for only_in_charts in (f"task {PAYLOAD}", f"level 0 {PAYLOAD}"):
        assert json.dumps(only_in_charts)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e").replace("/", "\\u002f") in scripts
    assert [h.replace(PAYLOAD, PLAIN) for h in page.headings] == plain.headings
    assert [t for t, _ in page.tags] == [t for t, _ in plain.tags]
    assert len(page.scripts) == len(plain.scripts) == doc["meta"]["n_charts"] + 2  # plotly.js (two) and one per chart
    assert len(page.tables) == len(plain.tables) > 20
    for (_, head, rows), (_, plain_head, plain_rows) in zip(page.tables, plain.tables):
        assert head.replace(PAYLOAD, PLAIN) == plain_head and [len(r) for r in rows] == [len(r) for r in plain_rows]


def test_the_page_with_markup_in_every_name_renders_in_chromium(pages, tmp_path):
    """In headless chromium the page asks for nothing but itself (an injected <img src=x> would ask for x), raises no
    error and renders every chart."""
    html, doc = pages[PAYLOAD]
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    result = open_in_chromium(page, tmp_path / "report.png")
    assert result["requested"] == [page.as_uri()] and result["consoleErrors"] == [] and result["pageErrors"] == []
    assert result["charts"] == result["rendered"] == doc["meta"]["n_charts"]


def same_number(text: str, value) -> bool:
    """Whether a cell's text shows ``value`` (to the digits it shows; '-' or 'n/a' for none)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return text in ("-", "n/a")
    if isinstance(value, float):
        return abs(float(text) - value) <= 0.5 * 10.0 ** -len(text.partition(".")[2]) + 1e-12
    if isinstance(value, list):
        return text == "[" + ", ".join(text.strip("[]").split(", ")) + "]" and all(
            same_number(t, v) for t, v in zip(text.strip("[]").split(", "), value))
    return text == str(value)


def test_the_tables_hold_the_numbers_of_report_json(pages):
    """Per judge the statistics table and the before / after calibration table, the verdicts, and the pairwise, decisions
    and system-level tables show report.json's figures, n and verdicts, row by row."""
    html, doc = pages[PLAIN]
    page = Page(html)
    cells = {(c["judge"], c["metric"], c["statistic"], c["facet"], c["level"]): c for c in doc["cells"]}
    titles = {m["title"]: name for name, m in doc["meta"]["metrics"].items()}
    from reports.agreement import GLOSSARY
    from reports.calibration import CALIBRATED_SUFFIX

    stat_of = {label: stat for stat, label in GLOSSARY.items()}
    checked = {"statistics": 0, "calibration": 0, "verdicts": 0, "records": 0}
    verdict_judges = iter(sorted({v["judge"] for v in doc["verdicts"]}))
    for h2, head, rows in page.tables:
        judge = h2.removeprefix("Judge: ")
        if head == "Agreement per metric (all items)":
            metrics = [titles[t] for t in rows[0][1:]]
            for label, *shown in rows[1:]:
                for metric, text in zip(metrics, shown):
                    c = cells.get((judge, metric, stat_of[label], "overall", "all"))
                    if c is None:
                        assert text == "-"
                        continue
                    first, n = text.split("\n")[:2] if c["value"] is not None else ("n/a", f"n={c['n_items']}")
                    value, _, ci = first.partition(" [")
                    assert same_number(value, c["value"]) and n == f"n={c['n_items']}", (judge, label, text)
                    if ci:
                        low, high = ci.rstrip("]").split(", ")
                        assert same_number(low, c["ci_low"]) and same_number(high, c["ci_high"])
                    checked["statistics"] += 1
        elif head == "Calibration before / after" and rows[0][:2] == ["metric", "language"] and rows[0][2] != "n":
            stats = {label: stat for stat, label in GLOSSARY.items() if stat in ("hj_exact", "hj_kappa", "hj_ac1", "hj_bias", "delta_alpha")}
            by_label = {label.replace("judge vs human consensus: ", ""): stat for label, stat in stats.items()}
            for title, level, *shown in rows[1:]:
                key = (titles[title], "overall" if level == "all" else "language", level)
                for label, text in zip(rows[0][2:], shown):
                    stat = by_label[label]
                    before, after = cells[(judge, key[0], stat, *key[1:])], cells[(judge + CALIBRATED_SUFFIX, key[0], stat, *key[1:])]
                    pair, n = text.split("\n")
                    b, a = pair.split(" → ")
                    assert same_number(b, before["value"]) and same_number(a, after["value"]) and n == f"n={after['n_items']}"
                    checked["calibration"] += 1
        elif h2 == "Verdicts: can the judge replace a native speaker?":
            judge = next(verdict_judges)  # one table per judge, in name order
            verdicts = {(v["metric"], v["language"]): v for v in doc["verdicts"] if v["judge"] == judge}
            for title, *shown in rows[1:]:
                for language, text in zip(rows[0][1:], shown):
                    v = verdicts[(titles[title], language)]
                    assert text.split("\n")[0] == v["verdict"] and f"n={v['n_items']}" in text
                    assert same_number(re.search(r"Δα (\S+)", text)[1], v["delta_alpha"])
                    checked["verdicts"] += 1
    sections = {"pairwise": ["leaderboards", "leaderboard_agreement", "pair_agreement", "first_position", "length_bias"],
                "decisions": ["ppi", "length_bias", "length_trend", "self_preference"], "system": ["agreement"]}
    record_tables = [(h2, rows) for h2, head, rows in page.tables if h2 in ("Pairwise", "Decisions", "System-level agreement")
                     and head != "Panel of judges"]
    expected = [doc[section][name] for section, names in sections.items() for name in names]
    assert len(record_tables) == len(expected)
    for (_, rows), records in zip(record_tables, expected):
        assert len(rows) == len(records) + 1
        for shown, record in zip(rows[1:], records):
            assert all(same_number(text, record[col]) for col, text in zip(rows[0], shown)), (rows[0], shown, record)
            checked["records"] += 1
    assert checked == {"statistics": 3 * 21, "calibration": 3 * 3 * 5, "verdicts": 3 * 3, "records": sum(map(len, expected))}


def test_cell_tooltips_are_the_notes_of_report_json(tmp_path):
    """Every statistic cell's tooltip on the demo's page is that cell's note in report.json: a missing note gives no
    tooltip (the page showed 'nan' for 30 of them)."""
    import json

    from markupsafe import escape

    import rubrics
    from kasauti.demo import DEMO_DATA
    from reports.build import report_pariksha

    paths, _ = report_pariksha(DEMO_DATA, tmp_path, rubrics.load_rubric_set("pariksha"))
    page = paths["html"].read_text(encoding="utf-8")
    notes = {str(escape(c["note"])) for c in json.loads(paths["json"].read_text(encoding="utf-8"))["cells"] if c["note"]}
    tooltips = re.findall(r"<td[^>]*? title='([^']*)'", page)
    assert tooltips and set(tooltips) <= notes, sorted(set(tooltips) - notes)[:3]
