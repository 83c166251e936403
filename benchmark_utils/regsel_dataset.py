"""The dataset class shared by the LIBSVM regularization-selection sets."""
from benchopt import BaseDataset

from benchmark_utils.regsel import build_regsel_problem, fetch_libsvm_set


class LibsvmRegSel(BaseDataset):
    """One L2 penalty per feature chosen on held-out LIBSVM data
    (:mod:`benchmark_utils.regsel`). A subclass sets ``name``,
    ``requirements``, ``parameters`` (``n_train, n_val, n_test``),
    ``libsvm_names`` (one data set, split three ways, or a training set and
    a set split into validation and test) and ``normalize_rows``."""

    libsvm_names = ()
    normalize_rows = False
    # The download does not depend on any parameter.
    prepare_cache_ignore = "all"

    def prepare(self):
        for libsvm_name in self.libsvm_names:
            fetch_libsvm_set(libsvm_name, self.name)

    def get_data(self):
        pools = [(*fetch_libsvm_set(libsvm_name, self.name), libsvm_name)
                 for libsvm_name in self.libsvm_names]
        problem = build_regsel_problem(
            pools, self.n_train, self.n_val, self.n_test,
            seed=self.get_seed(use_repetition=True),
            normalize_rows=self.normalize_rows)
        return dict(problem=problem)
