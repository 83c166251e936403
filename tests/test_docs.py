"""The documentation: the generated tables of docs/solvers.md match the
solver code, the README links every page of docs/, and every relative link
points to an existing file."""
import importlib.util
import re

import pytest

from benchopt.utils.parametrized_name_mixin import _extract_options
from conftest import BENCHMARK, ROOT

from benchmark_utils.device import DEVICE_PATTERN

DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: Markdown links and images: [text](target) and ![alt](target).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
                  r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def load_make_docs():
    spec = importlib.util.spec_from_file_location(
        "make_docs", ROOT / "scripts" / "make_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_docs = load_make_docs()


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
