from benchmark_utils.data.libsvm import LibsvmRegSel


class Dataset(LibsvmRegSel):
    """One L2 penalty per feature (62,061 words) of a 20-class logistic
    regression on 20 Newsgroups (Lang, ICML 1995), chosen on validation
    data: the LancBiO paper's second task, after Grazzi et al. (ICML 2020).
    The three splits are drawn disjointly from LIBSVM's 15,935 training
    documents, each scaled to unit Euclidean norm; the data stays sparse.
    Downloaded by libsvmdata (`benchopt prepare . -d regsel_news20`)."""

    name = "regsel_news20"
    requirements = ["pip::libsvmdata", "pip::scikit-learn"]
    libsvm_names = ("news20.multiclass",)
    normalize_rows = True
    parameters = {
        "n_train, n_val, n_test": [(8_000, 4_000, 3_935)],
    }
    test_parameters = {
        "n_train, n_val, n_test": [(40, 20, 20)],
    }
