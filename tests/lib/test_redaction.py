"""Every form a PostgreSQL password is written in is masked."""

import pytest

from alevor_assets.lib.redaction import dsn_passwords, known_secrets, redact

CASES = {
    "userinfo": ("postgresql://alice:Sup3r-Secret@db:5432/x", "postgresql://alice:***@db:5432/x"),
    "query": ("postgresql://alice@db/x?sslmode=require&password=Sup3r-Secret", "postgresql://alice@db/x?sslmode=require&password=***"),
    "key=value": ("host=db dbname=x password=Sup3r-Secret user=alice", "host=db dbname=x password=*** user=alice"),
    "quoted key=value": ("host=db password='Sup3r Secret' user=alice", "host=db password=*** user=alice"),
    "env style": ("export PGPASSWORD=Sup3r-Secret; psql", "export PGPASSWORD=***; psql"),
    "spaces around =": ("password = Sup3r-Secret", "password = ***"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_form_is_masked(case):
    text, want = CASES[case]
    assert redact(f"cannot connect to {text} (refused)", secrets=()) == f"cannot connect to {want} (refused)"


def test_known_passwords_are_masked_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("ALEVOR_PG_URL", "postgresql://alice:p%40ss-word@db/x")
    monkeypatch.setenv("PGPASSWORD", "env-only-secret")
    assert set(known_secrets()) >= {"p%40ss-word", "p@ss-word", "env-only-secret"}
    # A driver message that echoes a password in no recognizable form.
    assert redact('FATAL: role "p@ss-word" / env-only-secret') == 'FATAL: role "***" / ***'
    assert dsn_passwords("host=db password='a b c'") == ["a b c"]
    assert redact("interval=1m token=ABC date=2024-01-01", secrets=()) == "interval=1m token=ABC date=2024-01-01"
