"""What a fresh machine needs: every import declared, the test environment pinned, CI = README."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = ["kasauti", "studytables", "rubrics", "sampling", "judge", "annotator", "reports", "training"]
# Run inside the embedded server's own virtualenv, whose requirements annotator/server/env.py installs.
SERVER_SIDE = {ROOT / "annotator/server" / name for name in ("_run.py", "engine.py", "policy.py")}


def requirement_names(specs) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def imported_modules() -> dict[str, str]:
    """Top-level module -> first file importing it, for every absolute import in the packages."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in SERVER_SIDE:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_third_party_package_is_declared():
    project = PYPROJECT["project"]
    declared = requirement_names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= requirement_names(extra)
    dists = md.packages_distributions()
    missing = []
    for module, where in imported_modules().items():
        if module in sys.stdlib_module_names or module in PACKAGES:
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not names & declared:
            missing.append(f"{module} (imported in {where}; distribution {sorted(names) or 'not installed'})")
    assert not missing, "imported but not declared in pyproject.toml: " + ", ".join(missing)


def closure(names: set[str]) -> set[str]:
    """The distributions that installing `names` brings in (requirements without markers, recursively)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += requirement_names(r for r in md.requires(name) or [] if ";" not in r)
        except md.PackageNotFoundError:
            pass
    return seen


def test_argillas_undeclared_imports_are_declared_here():
    """argilla 2.8 imports requests without declaring it (a fresh `kasauti demo` failed): whatever
    argilla's code imports, argilla or kasauti must declare."""
    import argilla

    declared = closure(requirement_names(md.requires("argilla") or [])) | closure(
        requirement_names(PYPROJECT["project"]["dependencies"]))
    dists = md.packages_distributions()
    used = set()
    for path in Path(argilla.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                used.add(node.module.split(".")[0])
    assert "requests" in used
    missing = sorted(m for m in used - set(sys.stdlib_module_names) - {"argilla"}
                     if m in dists and not {d.lower().replace("_", "-") for d in dists[m]} & declared)
    assert not missing, f"argilla imports these and nobody declares them: {missing}"


def test_constraints_pin_every_declared_test_requirement():
    pins = {}
    for line in (ROOT / "tests/constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    wanted = requirement_names(PYPROJECT["project"]["dependencies"]) | requirement_names(
        PYPROJECT["project"]["optional-dependencies"]["test"])
    assert not wanted - pins.keys(), f"not pinned in tests/constraints.txt (run tests/lock.sh): {sorted(wanted - pins.keys())}"
    assert "-c tests/constraints.txt" in (ROOT / "tests/install.sh").read_text(encoding="utf-8")


def test_ci_runs_the_readmes_two_commands_in_a_new_virtualenv():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    for heading in ("Install and run the demo", "Install and run the tests"):
        block = re.search(r"^## " + re.escape(heading) + r"\n+```bash\n(.+?)\n```", readme, re.M | re.S)
        assert block, f"README.md lost its '## {heading}' bash block, which .ci/run runs"
        assert f'"{heading}"' in ci
    assert "python3 -m venv" in ci and '. "$venv/bin/activate"' in ci


def test_the_wheel_ships_every_data_file_of_the_packages(tmp_path):
    """A wheel built from this checkout holds every non-Python file of the packages: the report's and the
    rubrics' templates, the rubric sets, the study template and the demo data (package-data in pyproject.toml)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "node_modules", "build", "dist", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", "*.study", "kasauti-demo", "_data"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    shipped = set(zipfile.ZipFile(next((tmp_path / "dist").glob("kasauti-*.whl"))).namelist())
    data = {str(p.relative_to(src)) for package in PACKAGES for p in (src / package).rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert "reports/templates/report.html.j2" in data and "rubrics/sets/pariksha.yaml" in data
    assert not sorted(data - shipped), f"not in the wheel (add to [tool.setuptools.package-data]): {sorted(data - shipped)}"
