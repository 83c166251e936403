"""Writers of tiny data sets in the layouts the real loaders read (IDX for
torchvision, bz2 svmlight for libsvmdata), used by ``test_config.py`` and
the tests to run the real loading code offline."""
