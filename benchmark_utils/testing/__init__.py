"""What the tests and the measurement scripts run against: writers of tiny
data sets in the layouts the real loaders read (IDX for torchvision, bz2
svmlight for libsvmdata), used by ``test_config.py`` and the tests to run
the real loading code offline; the headless-browser check of the HTML
report; hand-written twins of LancBiO, SubBiO and SOBA, the floor the
speed scripts time the solvers against; and the counter of host reads of
device values, with the reads every solver is allowed per outer iteration
(``host_reads``)."""
