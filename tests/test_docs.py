"""The documentation: the generated tables of docs/solvers.md match the
solver code, the README links every page of docs/, every relative link
points to an existing file, docs/budget_plots.md states the report's rules
and saved views as the code has them, and scripts/readme_times.py times
the README's own commands."""
import importlib.util
import re

import pytest
import yaml
from benchopt.utils.parametrized_name_mixin import _extract_options
from conftest import BENCHMARK, ROOT

from benchmark_utils.device import DEVICE_PATTERN
from benchmark_utils.plotting.budget import RELATIVE_TIE
from benchmark_utils.plotting.profile import PRINTED_RATIOS, TOLERANCES

DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: Markdown links and images: [text](target) and ![alt](target).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
                  r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def load_script(name):
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_docs = load_script("make_docs")
readme_times = load_script("readme_times")


@pytest.fixture(scope="module")
def solvers():
    return make_docs.load_solvers(BENCHMARK)


def links(path):
    """Link targets of a Markdown file, outside code blocks and spans."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def is_relative(target):
    return not re.match(r"[a-z][a-z0-9+.-]*:|#", target)


def test_generated_tables_are_those_the_code_gives(solvers):
    page = make_docs.SOLVERS_PAGE.read_text()
    tables = make_docs.generated_tables(solvers)
    assert make_docs.stale_tables(page, tables) == [], (
        "docs/solvers.md is stale: run `python scripts/make_docs.py`")
    assert make_docs.render(page, tables) == page


def test_check_names_the_stale_table(solvers, tmp_path, capsys):
    page = tmp_path / "solvers.md"
    page.write_text(make_docs.SOLVERS_PAGE.read_text().replace(
        "| `SOBA` | `step_size_inner` | `auto` |",
        "| `SOBA` | `step_size_inner` | `0.1` |"))
    assert make_docs.main(["--check"], page=page, solvers=solvers) == 1
    message = capsys.readouterr().err
    assert "'solver-parameters' is stale" in message
    assert "solver-costs" not in message
    # Writing the page mends it.
    assert make_docs.main([], page=page, solvers=solvers) == 0
    assert make_docs.main(["--check"], page=page, solvers=solvers) == 0
    assert page.read_text() == make_docs.SOLVERS_PAGE.read_text()


def test_every_solver_states_its_cost_per_outer_iteration(solvers):
    for solver in solvers:
        assert make_docs.cost_sentence(solver)


def test_grouped_parameters_are_split():
    rows = make_docs.split_parameters(
        {"a": [1, 2], "b, c": [(3, "auto"), (4, None)]})
    assert rows == [("a", [1, 2]), ("b", [3, 4]), ("c", ["auto", None])]


def test_readme_links_every_docs_page():
    linked = {(README.parent / target.split("#")[0]).resolve()
              for target in links(README) if is_relative(target)}
    missing = [page.name for page in sorted(DOCS.glob("*.md"))
               if page.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("path", [README, *sorted(DOCS.glob("*.md"))],
                         ids=lambda path: path.name)
def test_relative_links_point_to_existing_files(path):
    broken = [target for target in links(path) if is_relative(target)
              and not (path.parent / target.split("#")[0]).exists()]
    assert not broken, f"{path.name} links missing files: {broken}"


def test_readme_lists_every_solver(solvers):
    readme = README.read_text()
    missing = [s.name for s in solvers if f"| `{s.name}` |" not in readme]
    assert not missing, f"README.md's solver table lacks {missing}"


#: A selection as the docs write it: ``-d``, ``-s`` or ``-o`` and a quoted
#: pattern.
SELECTION = re.compile(r'-([dso]) "([^"]+)"')


def test_documented_selections_are_read_by_benchopt_as_meant():
    documented = {selection for path in [README, *DOCS.glob("*.md")]
                  for selection in SELECTION.findall(path.read_text())}
    devices = []
    for kind, pattern in documented:
        # benchopt's own parser of -d / -s / -o patterns: it raises on a
        # spelling it cannot read.
        name, args, parameters = _extract_options(pattern)
        assert name and not args, pattern
        if kind == "o":
            devices += [parameters["device"]] if "device" in parameters \
                else []
    assert "cuda:1" in devices
    for device in devices:
        assert re.fullmatch(DEVICE_PATTERN, device), device


def test_budget_plots_page_lists_the_saved_views_of_config():
    page = (DOCS / "budget_plots.md").read_text()
    section = page.split("## Saved views")[1].split("\n## ")[0]
    rows = re.findall(r"^\| (.+?) \| `(\w+)` \|", section, re.M)
    views = yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]
    assert rows == [(name, view["plot_kind"])
                    for name, view in views.items()]


def test_budget_plots_page_states_the_rules_the_code_has():
    page = re.sub(r"\s+", " ", (DOCS / "budget_plots.md").read_text())
    plots = {plot._get_name(): plot for plot in BENCHMARK.get_plots()}
    assert f"relative gap `|a - b| / max(|a|, |b|)` of {RELATIVE_TIE:.1%}" \
        in page
    table = plots["budget_table"].options
    budgets = ", ".join(map(str, table["time_budget"][:-1]))
    assert f"seconds: {budgets} or {table['time_budget'][-1]})" in page
    budgets = ", ".join(map(str, table["oracle_budget"][:-1]))
    assert f"(`oracle_budget`: {budgets} or {table['oracle_budget'][-1]})" \
        in page
    tolerances = ", ".join(f"`{t}`" for t in TOLERANCES[:-1])
    assert f"`tolerance` is {tolerances} or `{TOLERANCES[-1]}`" in page
    ratios = ", ".join(f"{tau:g}" for tau in PRINTED_RATIOS[:-1])
    assert f"`tau` = {ratios} and {PRINTED_RATIOS[-1]:g}" in page


def test_readme_times_runs_the_readme_commands(tmp_path):
    commands = readme_times.readme_commands()
    readme = README.read_text()
    assert commands["run"] in readme and "configs/quickstart.yml" in \
        commands["run"]
    assert commands["tests"].endswith("python -m pytest -q tests")
    # Without their set-up, the commands keep only what they measure.
    assert readme_times.without_setup(commands["run"]) == (
        "benchopt run . --config configs/quickstart.yml")
    assert readme_times.without_setup(commands["tests"]) == (
        "bash .ci/browser-assets && ruff check . && "
        "python -m pytest -q tests")
    seconds, status = readme_times.time_command("sleep 0.3 && exit 3",
                                                tmp_path)
    assert status == 3 and 0.3 <= seconds < 5


def test_readme_times_keeps_what_the_commands_wrote(tmp_path, monkeypatch):
    # A stand-in for the quickstart that writes a results file in the
    # clone: --keep-outputs copies it out before the clone is removed.
    monkeypatch.setattr(readme_times, "readme_commands", lambda: {
        "run": "mkdir -p outputs && echo 42 > outputs/quickstart.parquet"})
    kept = tmp_path / "kept"
    assert readme_times.main(["--venv", "current", "--only", "run",
                              "--keep-outputs", str(kept)]) == 0
    assert (kept / "quickstart.parquet").read_text() == "42\n"
