from benchmark_utils.data.libsvm import LibsvmRegSel


class Dataset(LibsvmRegSel):
    """One L2 penalty per feature of a logistic regression on ijcnn1
    (Prokhorov, IJCNN 2001 challenge; 22 features, two classes), chosen on
    validation data: training samples from LIBSVM's training file,
    validation and test samples drawn disjointly from its test file.
    Downloaded by libsvmdata (`benchopt prepare . -d regsel_ijcnn1`)."""

    name = "regsel_ijcnn1"
    requirements = ["pip::libsvmdata", "pip::scikit-learn"]
    libsvm_names = ("ijcnn1", "ijcnn1_test")
    parameters = {
        "n_train, n_val, n_test": [(49_990, 45_850, 45_851)],
    }
    test_parameters = {
        "n_train, n_val, n_test": [(40, 20, 20)],
    }
