"""scripts/gpu_report.py, the prepared GPU command, end to end on the CPU at
its quick sizes: every section runs and fills its table."""
import re
import subprocess
import sys

import pytest
from conftest import BENCHMARK, ROOT


def section(report, title):
    """The text of the section ``title`` of a report."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", report,
                      re.S | re.M)
    assert match is not None, f"no section {title!r}"
    return match.group(1)


def rows(text):
    """The rows of the first Markdown table of ``text``, as lists of
    cells, the header and the rule left out."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in lines[2:]]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    output = tmp_path_factory.mktemp("report") / "report.md"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_report.py"),
         "--device", "cpu", "--quick", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output.read_text()


def test_every_section_is_written_without_failure(report):
    sys.path.insert(0, str(ROOT / "scripts"))
    from gpu_report import SECTIONS
    for title, _ in SECTIONS:
        assert rows(section(report, title)), title
    assert "Failed" not in report


def test_the_twins_compute_what_the_solvers_compute(report):
    twins = rows(section(report, "Solvers against their hand-written twins"))
    # LancBiO, SubBiO and SOBA, at two sizes, in two dtypes.
    assert len(twins) == 12
    for name, _, dtype, *_, agree in twins:
        assert float(agree) <= (1e-12 if dtype == "float64" else 1e-3), name


def test_lancbio_makes_seven_products_with_g_per_iteration(report):
    # At m = 1 (the quick warm-up): T = 5 inner gradients, one HVP and the
    # restart's HVP, one product with G each in closed form.
    for _, _, products, *_ in rows(section(
            report, "LancBiO against its arithmetic floor")):
        assert float(products) == 7.0


def test_every_solver_is_timed_on_hypercleaning(report):
    timed = rows(section(report, "Time per iteration on hyper-cleaning"))
    names = {row[0].split("[")[0] for row in timed}
    assert names == {solver.name for solver in BENCHMARK.get_solvers()}
    for name, milliseconds, launches, launch_floor, *_ in timed:
        assert float(milliseconds) > 0 and int(launches) > 0, name
        assert float(launch_floor) == pytest.approx(
            int(launches) * 5e-3, abs=1e-3), name


def test_the_paper_run_gives_a_curve_of_each_solver(report):
    curves = rows(section(report,
                          "A 60-second run of configs/paper_synthetic.yml"))
    assert sorted(row[0] for row in curves) == sorted(
        ("LancBiO", "SubBiO", "SOBA", "stocBiO"))
    for row in curves:
        assert row[1] == "synthetic[kappa=100000.0,n=100]"
        assert int(row[3]) >= 1


def test_the_paper_run_reports_each_curve_memory(report):
    # Four solvers on synthetic[n=100]: each keeps at least x and y (100
    # float64 each) and its peak is at least its state.
    curves = rows(section(report, "A 60-second run of "
                                  "configs/paper_synthetic.yml"))
    assert len(curves) == 4
    for *_, state, peak in curves:
        assert 2 * 100 * 8 / 2 ** 20 <= float(state) <= float(peak)


def test_every_solver_reports_its_memory_on_hyper_cleaning(report):
    # hyperclean_mnist5k at the quick sizes: y holds 785 x 10 float64
    # weights and x one weight per training sample (100): every solver
    # keeps at least x and y, and its peak is at least its state.
    solvers = rows(section(report, "Time per iteration on hyper-cleaning"))
    assert len(solvers) >= 20
    least = (785 * 10 + 100) * 8 / 2 ** 20
    for name, *_, state, peak in solvers:
        assert least <= float(state) <= float(peak), name
