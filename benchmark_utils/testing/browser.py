"""Opening benchopt's HTML report in headless Chromium, offline.

Used by tests/test_html_report.py. The report loads plotly.js, Grid.js and
anime.js from CDNs; the page is rewritten to load local copies of the same
versions, the npm packages that ``.ci/browser-assets`` unpacks into
``.cache/browser-assets/<name>@<version>/``. A Content-Security-Policy then
refuses every other load and a script records what was refused, what
failed to load and every script error, so that a page reaching for the
network fails the test instead of quietly drawing less.

``render_report`` builds the page of a results file as ``benchopt plot``
does; ``report_views`` selects every saved view through the page's own
view tabs and reads back what each one drew: the plotly traces (their data
and the markers in the SVG) or the table rows, and whether the tabs and
the table columns fit in the window; ``view_problems`` says what a reader
would find wrong with a view. ``screenshot`` takes a PNG of the view the
report opens on.
"""
import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = ".ci/browser-assets"
ASSET_CACHE = ROOT / ".cache" / "browser-assets"

#: The report's CDN URLs and the files of their npm packages, as
#: (URL pattern, function of its match giving the file).
CDN_COPIES = (
    (re.compile(r"https://cdn\.plot\.ly/plotly-(?P<version>[\d.]+)\.min\.js"),
     lambda match: (ASSET_CACHE / f"plotly.js-dist-min@{match['version']}"
                    / "plotly.min.js")),
    (re.compile(r"https://cdn\.jsdelivr\.net/npm/"
                r"(?P<package>[^/@]+@[^/]+)/(?P<path>.+)"),
     lambda match: ASSET_CACHE / match["package"] / match["path"]),
    (re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/"
                r"(?P<name>[^/]+)/(?P<version>[^/]+)/(?P<path>.+)"),
     lambda match: (ASSET_CACHE / f"{match['name']}@{match['version']}"
                    / match["path"])),
)
#: The web font of the report's headings: left out, the page falls back to
#: a local font.
WEB_FONTS = "https://fonts.googleapis.com/"

EXTERNAL_TAG = re.compile(
    r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]*)\"[^>]*>")
# Local files and inline code only: anything else is refused and reported.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src file: 'unsafe-inline' 'unsafe-eval'; "
    "style-src file: 'unsafe-inline'; img-src file: data: blob:; "
    "font-src file: data:")
# First in <head>: collects refused loads, failed loads and script errors
# into window.pageProblems.
GUARD_SCRIPT = """
window.pageProblems = [];
document.addEventListener('securitypolicyviolation', event => {
  window.pageProblems.push(
    `refused to load ${event.blockedURI} (${event.violatedDirective})`);
});
window.addEventListener('error', event => {
  const target = event.target;
  if (target && target !== window) {
    window.pageProblems.push(
      `failed to load ${target.src || target.href || target.tagName}`);
  } else {
    window.pageProblems.push(`script error: ${event.message}`);
  }
}, true);
window.addEventListener('unhandledrejection', event => {
  window.pageProblems.push(`unhandled rejection: ${event.reason}`);
});
"""
REPORT_ID = "saved-views-report"
# After the page's own load handlers (which open the first view): clicks
# each view's tab, as a reader does, records what it drew and the page's
# problems meanwhile, then writes the JSON report into <pre id=REPORT_ID>.
VIEWS_SCRIPT = """
const waitFor = async (ready, timeoutMs) => {
  for (let waited = 0; !ready() && waited < timeoutMs; waited += 50) {
    await new Promise(resolve => setTimeout(resolve, 50));
  }
};
const shown = element => element.offsetParent !== null;

const drawnPlot = () => {
  const div = ['plot_with_legend_container', 'plot_container']
    .map(id => document.getElementById(id))
    .find(div => shown(div) && Array.isArray(div.data));
  if (!div) return null;
  const traceGroups = div.querySelectorAll('.scatterlayer .trace');
  return {
    title: div._fullLayout.title.text,
    axis_titles: [div._fullLayout.xaxis.title.text,
                  div._fullLayout.yaxis.title.text],
    axis_types: [div._fullLayout.xaxis.type, div._fullLayout.yaxis.type],
    traces: div.data.map((trace, i) => ({
      name: trace.name, x: trace.x, y: trace.y,
      markers_drawn: traceGroups[i]
        ? traceGroups[i].querySelectorAll('.point').length : 0,
    })),
    legend: [...document.querySelectorAll('#plot_legend .curve')]
      .filter(shown).map(item => item.textContent),
  };
};

const drawnTable = async () => {
  const container = document.getElementById('table_container');
  if (!shown(container)) return null;
  const rows = '#table_container .gridjs-table tbody tr';
  // Grid.js fills the table asynchronously.
  await waitFor(() => document.querySelector(rows), 5000);
  const headers = [...container.querySelectorAll('.gridjs-th')];
  return {
    title: (container.querySelector('h2') || {}).innerText,
    columns: [...container.querySelectorAll('.gridjs-th-content')]
      .map(th => th.textContent.trim()),
    // Columns whose right edge is inside the window, as a reader sees.
    columns_in_view: headers.filter(
      th => th.getBoundingClientRect().right <= window.innerWidth).length,
    rows: [...document.querySelectorAll(rows)].map(
      tr => [...tr.querySelectorAll('td')].map(td => td.textContent.trim())),
  };
};

const reportViews = async () => {
  const openedOn = document.querySelector('#view-tabs span.view.active');
  const views = [];
  for (const tab of document.querySelectorAll('#view-tabs span.view')) {
    const problemsBefore = window.pageProblems.length;
    const view = {name: tab.textContent};
    tab.click();
    view.plot_kind = window._state.plot_kind;
    view.plot = drawnPlot();
    view.table = await drawnTable();
    view.problems = window.pageProblems.slice(problemsBefore);
    views.push(view);
  }
  const report = document.createElement('pre');
  report.id = '%(report_id)s';
  const tabs = document.getElementById('view-tabs');
  report.textContent = JSON.stringify({
    opened_on: openedOn && openedOn.textContent,
    window_width: window.innerWidth,
    // Every view tab inside the tab bar, without scrolling it.
    tabs_fit: tabs.scrollWidth <= tabs.clientWidth,
    views: views,
    page_problems: window.pageProblems,
  });
  document.body.appendChild(report);
};
window.addEventListener('load', () => setTimeout(reportViews, 0));
""" % {"report_id": REPORT_ID}


class MissingBrowserAsset(RuntimeError):
    """Chromium or a local copy of a script of the report is missing."""


def find_chromium():
    """The Chromium on PATH (``chromium`` or ``chromium-browser``)."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise MissingBrowserAsset(
        f"No chromium on PATH: run {SETUP_SCRIPT}, which installs Debian's "
        "chromium package.")


def local_copy(url):
    """The local file standing for the CDN ``url``, or None."""
    for pattern, copy in CDN_COPIES:
        if match := pattern.fullmatch(url):
            return copy(match)
    return None


def offline_page(page, script=""):
    """``page`` (a report's HTML) loading its scripts and stylesheets from
    local copies and refusing any other load, with ``script`` run in <head>
    after the guard that records the page's problems."""
    missing = []

    def localize(match):
        tag, url = match.group(0), match.group(1)
        if 'rel="preconnect"' in tag or url.startswith(WEB_FONTS):
            return ""
        copy = local_copy(url)
        if copy is None:
            missing.append(
                f"{url}: no local copy known (add its CDN to CDN_COPIES in "
                "benchmark_utils/testing/browser.py, its npm package to "
                f"{SETUP_SCRIPT})")
            return tag
        if not copy.is_file():
            missing.append(f"{url}: no {copy}")
            return tag
        return tag.replace(url, copy.as_uri())

    page = EXTERNAL_TAG.sub(localize, page)
    if missing:
        raise MissingBrowserAsset(
            "The report loads scripts or stylesheets that have no local "
            f"copy: run {SETUP_SCRIPT} (for a version that benchopt's "
            "template changed, update the script's PACKAGES first):\n  "
            + "\n  ".join(missing))
    remaining = EXTERNAL_TAG.findall(page)
    assert not remaining, f"still loaded from the network: {remaining}"
    head = (f'<meta http-equiv="Content-Security-Policy" '
            f'content="{CONTENT_SECURITY_POLICY}">\n'
            f"<script>{GUARD_SCRIPT}</script>\n<script>{script}</script>")
    page, n_heads = re.subn(r"<head>", lambda _: f"<head>\n{head}", page,
                            count=1)
    assert n_heads == 1, "the report has no <head>"
    return page


def run_chromium(page_path, *args, budget_ms=10_000, timeout=120):
    """Headless Chromium, without network, on the file ``page_path``, with
    ``budget_ms`` of virtual time for the page's timers. Returns what it
    printed."""
    command = [
        find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-dev-shm-usage", "--allow-file-access-from-files",
        # No host name resolves: nothing reaches the network.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--no-default-browser-check",
        f"--user-data-dir={page_path.parent / 'chromium-profile'}",
        f"--virtual-time-budget={budget_ms}", *args, page_path.as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True,
                               timeout=timeout)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def report_views(page, folder, width=1400, height=900):
    """Select every saved view of the report ``page`` (its HTML) in
    headless Chromium, in a ``width`` x ``height`` window, writing the
    files it needs to ``folder``.

    Returns {"opened_on": the view the page opened on, "window_width",
    "tabs_fit": whether every view tab shows without scrolling the tab
    bar, "views": [{name, plot_kind, plot, table, problems}],
    "page_problems": [...]}: ``plot`` holds the title, the axis titles and
    types, the traces (name, x, y, markers_drawn) and the legend entries
    of a plot view, ``table`` the title, the columns, the number of
    columns inside the window and the rows (cell texts) of a table view,
    each None when the view did not draw one; ``problems`` are the page's
    problems while the view was selected.
    """
    page_path = folder / "views.html"
    page_path.write_text(offline_page(page, VIEWS_SCRIPT), encoding="utf-8")
    dom = run_chromium(page_path, "--dump-dom",
                       f"--window-size={width},{height}")
    found = re.search(rf'<pre id="{REPORT_ID}">(.*?)</pre>', dom, re.S)
    assert found, f"the page wrote no view report; its end:\n{dom[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


#: After the page's own load handlers: selects the saved view named
#: %(view)s, as a click on its tab does.
SELECT_VIEW_SCRIPT = """
window.addEventListener('load', () => setTimeout(() => {
  const tab = [...document.querySelectorAll('#view-tabs span.view')]
    .find(tab => tab.textContent === %(view)s);
  if (tab) tab.click();
  else window.pageProblems.push('no saved view named ' + %(view)s);
}, 0));
"""


def screenshot(page, folder, png_path, width=1200, height=800, view=None):
    """A ``width`` x ``height`` PNG of the report ``page`` (its HTML) at
    ``png_path``, as it opens or, given ``view``, on the saved view of
    that name; the files it needs go to ``folder``."""
    page_path = Path(folder) / "report.html"
    script = ("" if view is None
              else SELECT_VIEW_SCRIPT % {"view": json.dumps(view)})
    page_path.write_text(offline_page(page, script), encoding="utf-8")
    png_path.unlink(missing_ok=True)
    run_chromium(page_path, f"--screenshot={png_path}",
                 f"--window-size={width},{height}", "--hide-scrollbars")
    assert png_path.is_file(), f"Chromium wrote no {png_path}"


def view_problems(drawn):
    """What is wrong with one view of :func:`report_views`, as readers see
    it: nothing drawn, a plot without a curve or without a finite point, a
    table without rows or with columns outside the window, or a page
    problem while it was selected. Empty for a view that draws."""
    problems = list(drawn["problems"])
    plot, table = drawn["plot"], drawn["table"]
    if plot is None and table is None:
        problems.append("nothing drawn")
    if plot is not None:
        if not plot["traces"]:
            problems.append("a plot without curves")
        finite = [value for trace in plot["traces"]
                  for value in trace["x"] + trace["y"]
                  if isinstance(value, (int, float))
                  and math.isfinite(value)]
        if not finite:
            problems.append("a plot without a finite point")
    if table is not None:
        if not table["rows"]:
            problems.append("a table without rows")
        if table["columns_in_view"] < len(table["columns"]):
            problems.append(
                f"{len(table['columns']) - table['columns_in_view']} table "
                "columns outside the window")
    return problems


def render_report(results, folder, benchmark_dir=ROOT):
    """The HTML page that ``benchopt plot`` writes for the results file
    ``results``, with the saved views of the benchmark's config.yml, built
    in ``folder`` (benchopt's own functions, as ``plot_benchmark_html``
    calls them; nothing is written to the benchmark's outputs/)."""
    from benchopt.benchmark import Benchmark
    from benchopt.plotting import _sanitize_config
    from benchopt.plotting.generate_html import (get_results,
                                                 render_all_results)
    benchmark = Benchmark(benchmark_dir)
    config = _sanitize_config(benchmark.get_plot_config())
    copy = Path(folder) / "outputs" / Path(results).name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(results, copy)
    [page] = render_all_results(
        get_results([copy], Path(folder), benchmark, config), benchmark)
    return page
