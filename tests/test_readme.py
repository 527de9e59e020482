"""The README says what the code does."""

import re


from alevor_assets import compute_features
from alevor_assets.lib.bars import time_bars
from alevor_assets.lib.features import FeatureConfig
from alevor_assets.lib.synthetic import trades_for_day
from tests.conftest import REPO, START, small_config


def _documented_names() -> list[str]:
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- feature-table:start")[1].split("<!-- feature-table:end")[0]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


def test_feature_table_matches_the_produced_columns():
    config = FeatureConfig()
    documented = []
    for name in _documented_names():
        if "<span>" in name:
            documented += [name.replace("<span>", s) for s in config.spans]
        elif "<chunk>" in name:
            documented += [name.replace("<chunk>", c) for c in config.rush_chunks]
        elif "<coarser>" in name:
            documented += [name.replace("<coarser>", j) for j in config.multi_timeframe]
        else:
            documented.append(name)
    trades = trades_for_day(small_config(), START)
    bars = time_bars(trades, ["2s", "1m", "5m", "1h"])
    produced = compute_features(bars, "2s", trades=trades, config=config).columns[3:]
    assert sorted(documented) == sorted(produced)
    assert len(documented) == len(set(documented))


def test_every_environment_variable_the_code_reads_is_documented():
    text = (REPO / "README.md").read_text()
    code = "\n".join(p.read_text() for p in (REPO / "alevor_assets").rglob("*.py"))
    used = set(re.findall(r"\b(ALEVOR_[A-Z_]+)\b", code))
    assert used, "no variables found"
    for name in sorted(used):
        assert f"`{name}`" in text, name


def _layout_paths() -> tuple[set[str], set[str]]:
    """Files and folders named in README "Repository layout", as paths from the repository root.

    A line names a folder when its first word ends with ``/``; the file names that follow (or
    start the line) belong to that folder, or to the enclosing one. Deeper-indented lines that
    continue a description name nothing."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Repository layout", 1)[1].split("```", 2)[1]
    files: set[str] = set()
    folders: set[str] = set()
    stack: list[tuple[int, str]] = [(-1, "")]
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        words = line.split()
        if indent >= 24:  # the description column: a continuation line
            continue
        while stack[-1][0] >= indent:
            stack.pop()
        where = stack[-1][1]
        if words[0].endswith("/"):
            where = where + words[0]
            folders.add(where)
            stack.append((indent, where))
            words = words[1:]
        for word in words:
            name = word.rstrip(":,")
            if not re.fullmatch(r"[\w.]+\.(py|yaml)", name):
                break
            files.add(where + name)
            if word.endswith(":"):
                break
    return files, folders


def test_the_repository_layout_names_every_module_and_nothing_else():
    files, folders = _layout_paths()
    package = {
        str(p.relative_to(REPO)) for p in (REPO / "alevor_assets").rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts and p.parent.name != "specs"
    }
    documented = {f for f in files if f.startswith("alevor_assets/")}
    assert sorted(package - documented) == [], "modules missing from README's layout"
    assert sorted(documented - package) == [], "README's layout names modules that do not exist"
    missing = sorted(f for f in folders if not (REPO / f).is_dir())
    assert missing == [], "README's layout names folders that do not exist"
    every_folder = {str(p.relative_to(REPO)) + "/" for p in (REPO / "alevor_assets").rglob("*")
                    if p.is_dir() and p.name != "__pycache__"}
    assert sorted(every_folder - folders) == [], "folders missing from README's layout"


def test_lib_never_imports_dagster_or_defs_and_defs_folders_do_not_import_each_other_in_a_circle():
    import ast

    edges: dict[str, set[str]] = {}
    for path in (REPO / "alevor_assets").rglob("*.py"):
        rel = path.relative_to(REPO / "alevor_assets").parts
        modules = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
        if rel[0] == "lib":
            bad = sorted(m for m in modules if m.split(".")[0] == "dagster" or m.startswith("alevor_assets.defs"))
            assert bad == [], (path, bad)
        if rel[0] == "defs" and len(rel) > 2:  # a stage folder
            here = rel[1]
            edges.setdefault(here, set()).update(
                m.split(".")[2] for m in modules
                if m.startswith("alevor_assets.defs.") and len(m.split(".")) > 3 and m.split(".")[2] != here
            )

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges.get(start, ()))

    circles = sorted(f for f in edges if reaches(f, f, {f}))
    assert circles == [], f"defs folders in an import circle: {circles} ({edges})"


def test_the_real_market_recipe_switches_off_every_shipped_spec_but_the_pump_detector():
    # A spec added to the package and forgotten here would train on a market it cannot feed.
    section = (REPO / "README.md").read_text().split("## Your own market, your own specs")[1]
    loop = re.search(r"for s in (.*?); do", section, flags=re.S).group(1)
    switched_off = set(loop.replace("\\", " ").split())
    shipped = {p.stem for p in (REPO / "alevor_assets" / "specs").glob("*.yaml")}
    assert switched_off == shipped - {"pump_detector_2s"}
