"""Toast exports: sources, raw archive, parsing, validation and staging."""
