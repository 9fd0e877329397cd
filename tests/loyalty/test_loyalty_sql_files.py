"""The loyalty SQL models: each says what it computes, binds only the engine's parameters."""

import re
from pathlib import Path

import pytest

SQL = Path(__file__).resolve().parents[2] / "include" / "sql"
MODELS = sorted((SQL / "loyalty").glob("*.sql")) + sorted((SQL / "schema").glob("010_*.sql"))
PARAMETERS = {"as_of", "previous_as_of", "full_run", "run_id", "work_from", "work_to",
              "leaving_after", "leaving_until", "recent_after"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_model_is_commented_and_binds_known_parameters(path):
    text = path.read_text()
    assert text.startswith("-- "), "the first line says what the model computes"
    # SQLAlchemy reads any :word as a parameter, in comments and string literals too
    assert set(re.findall(r"(?<![:\w]):(\w+)", text)) <= PARAMETERS
    assert "::" not in text, "no PostgreSQL-only casts"
    for line in text.splitlines():  # a comment ending in ';' would split a statement
        assert not (line.lstrip().startswith("--") and line.rstrip().endswith(";")), line
