"""Draw one budget curve of a results file as a PNG for the README.

`benchopt plot --no-html -k budget_curve` draws every dataset and metric,
as PDF files in outputs/; this draws one of them the same way (benchopt's
own matplotlib rendering of the plot's data), with a legend that fits 13
solvers, as a PNG, on log-log axes (which leave out each curve's starting
point, at zero work):

    python scripts/make_figure.py outputs/quickstart.parquet \
        "synthetic[kappa=100000.0,n=300]" objective_hypergrad_norm \
        "Gradient-equivalent work" docs/budget_curve_synthetic.png
"""
import sys
from pathlib import Path

import matplotlib
from benchopt.benchmark import Benchmark
from benchopt.plotting.generate_matplotlib import get_plot_scatter
from benchopt.plotting.helpers import update_plot_data_style
from benchopt.results import read_results

matplotlib.use("Agg")


def main(results_file, dataset, metric, x_axis, output):
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    df = read_results(results_file)
    (objective,) = df["objective_name"].unique()
    plot = next(plot for plot in benchmark.get_plots()
                if plot._get_name() == "budget_curve")
    data = plot.get_metadata(df, dataset, objective, metric, x_axis)
    data["data"] = [
        {**curve, **{key: [value for x, value in zip(curve["x"], values)
                           if x > 0]
                     for key, values in curve.items()
                     if key in ("x", "y", "y_low", "y_high")}}
        for curve in plot.plot(df, dataset, objective, metric, x_axis)]
    data = update_plot_data_style({"plot": {"figure": data}},
                                  plotly=False)["plot"]["figure"]
    figure = get_plot_scatter(data)
    figure.set_size_inches(9, 5.5)
    axes = figure.axes[0]
    for line in axes.get_lines():
        line.set_linewidth(1.5)
        line.set_markersize(4)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_title(f"Data: {dataset}", fontsize=11)
    axes.xaxis.label.set_fontsize(10)
    axes.yaxis.label.set_fontsize(10)
    axes.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(output, dpi=90, bbox_inches="tight")


if __name__ == "__main__":
    main(*sys.argv[1:])
