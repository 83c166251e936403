"""Open the HTML report of a results file in headless Chromium, offline,
click through every saved view of config.yml and say what each one draws;
optionally save a screenshot of the report, as it opens or on one view.

Exits with 1 when a view draws nothing (no curve, no finite point, no
table row), when a table has columns outside the window, or when the view
tabs do not all fit in the window. Needs Chromium and local copies of the
report's scripts: run .ci/browser-assets first.

Usage (from the benchmark folder):
    python scripts/report_views.py RESULTS.parquet [--width 1400]
        [--screenshot PNG [--view NAME] [--height 900]]

The README's picture of the report is the quickstart's, as it opens:
    benchopt run . --config configs/quickstart.yml
    python scripts/report_views.py outputs/quickstart.parquet \
        --screenshot docs/report.png
"""
import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.testing.browser import (  # noqa: E402
    render_report, report_views, screenshot, view_problems)


def describe(drawn):
    """What a view drew, in a few words."""
    if drawn["plot"] is not None:
        return f"{len(drawn['plot']['traces'])} curves"
    if drawn["table"] is not None:
        return f"{len(drawn['table']['rows'])} rows"
    return "nothing"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--screenshot", type=Path, metavar="PNG")
    parser.add_argument("--view", help="the saved view of the screenshot "
                        "(default: the one the report opens on)")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        sys.exit(f"report_views.py: no results file at {args.results}")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        page = render_report(args.results, folder)
        report = report_views(page, folder, args.width, args.height)
        failed = not report["tabs_fit"]
        print(f"{len(report['views'])} saved views at {args.width} px; the "
              f"tabs {'fit' if report['tabs_fit'] else 'do not fit'}")
        for drawn in report["views"]:
            problems = view_problems(drawn)
            failed |= bool(problems)
            print(f"  {drawn['name']} ({drawn['plot_kind']}): "
                  f"{describe(drawn)}"
                  + (f"; {'; '.join(problems)}" if problems else ""))
        if args.screenshot is not None:
            screenshot(page, folder, args.screenshot.resolve(), args.width,
                       args.height, args.view)
            print(f"screenshot: {args.screenshot}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
