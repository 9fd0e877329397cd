"""Toast POS exports to PassKit loyalty passes: the importable core of the pipeline."""
