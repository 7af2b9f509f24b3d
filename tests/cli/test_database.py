"""Which database a command opens: --db, then WARDEN_DATABASE_URL, then warden.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Seeded, invoke
from warden.cli.database import database_from_url, open_workspace
from warden.errors import StoreError


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/warden.db", Path("data/warden.db")),
        ("sqlite:////var/lib/warden.db", Path("/var/lib/warden.db")),
        ("SQLITE:///w.db?mode=rwc", Path("w.db")),
        ("plain/warden.db", Path("plain/warden.db")),
        ("  /abs/warden.db ", Path("/abs/warden.db")),
    ],
    ids=["sqlite-relative", "sqlite-absolute", "query-dropped", "plain-relative", "plain-abs"],
)
def test_a_database_url_names_a_sqlite_file(url: str, path: Path) -> None:
    assert database_from_url(url) == path


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (
            "postgresql://warden:s3cret@db.internal/warden",
            "postgresql://warden:s3cret@db.internal/warden",
        ),
        ("postgres://warden:s3cret@db/warden", "postgresql://warden:s3cret@db/warden"),
        ("postgresql+psycopg://warden@db/warden", "postgresql://warden@db/warden"),
    ],
    ids=["postgresql", "postgres", "postgresql+driver"],
)
def test_a_database_url_names_a_postgresql_database(url: str, target: str) -> None:
    assert database_from_url(url) == target


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://warden:s3cret@db/warden", "reads SQLite or PostgreSQL"),
        ("sqlite://", "must name a database file"),
        ("sqlite:///:memory:", "must name a database file"),
        ("", "set but empty"),
    ],
    ids=["mysql", "no-path", "memory", "empty"],
)
def test_a_url_that_names_no_database_is_refused_without_echoing_it(url: str, says: str) -> None:
    with pytest.raises(StoreError) as caught:
        database_from_url(url)
    assert caught.value.code == "W-STO-001"
    assert says in caught.value.message
    assert "s3cret" not in caught.value.render()


def test_an_unreachable_postgresql_database_is_an_error_without_its_password(
    project: Path,
) -> None:
    url = "postgresql://warden:s3cret@127.0.0.1:1/warden"
    code, out = invoke("runs", "list", "-p", str(project), env={"WARDEN_DATABASE_URL": url})
    assert code == 2
    assert "W-STO-001" in out and "postgresql://warden@127.0.0.1:1/warden" in out
    assert "s3cret" not in out and "Traceback" not in out


def test_db_beats_the_environment_which_beats_warden_yaml(seeded: Seeded, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    from_yaml = open_workspace(seeded.root, None, environ={})
    from_env = open_workspace(seeded.root, None, environ={"WARDEN_DATABASE_URL": str(other)})
    from_flag = open_workspace(
        seeded.root, seeded.db, environ={"WARDEN_DATABASE_URL": f"sqlite:///{other}"}
    )
    assert (from_yaml.database.path, from_yaml.database.source) == (
        seeded.db,
        "warden.yaml store:",
    )
    assert (from_env.database.path, from_env.database.source) == (other, "WARDEN_DATABASE_URL")
    assert (from_flag.database.path, from_flag.database.source) == (seeded.db, "--db")


def test_a_named_database_needs_no_project(seeded: Seeded, tmp_path: Path) -> None:
    nowhere = tmp_path / "empty"
    nowhere.mkdir()
    url = f"sqlite:///{seeded.db}"  # absolute: sqlite:////...
    code, out = invoke("runs", "list", "-p", str(nowhere), env={"WARDEN_DATABASE_URL": url})
    assert code == 0, out
    assert "run_1" in out
    code, out = invoke("runs", "list", "-p", str(nowhere), "--db", str(seeded.db))
    assert code == 0 and "run_1" in out


def test_the_store_setting_in_warden_yaml_is_honoured(seeded: Seeded) -> None:
    moved = seeded.root / "state" / "payments.db"
    moved.parent.mkdir()
    seeded.db.rename(moved)
    config = seeded.root / "warden.yaml"
    config.write_text(config.read_text() + "store: state/payments.db\n")
    code, out = invoke("runs", "list", "-p", str(seeded.root))
    assert code == 0 and "run_1" in out


def test_reading_a_database_that_does_not_exist_is_refused_not_created(project: Path) -> None:
    code, out = invoke("approvals", "list", "-p", str(project))
    assert code == 2
    assert "W-STO-001" in out and "no Warden database at" in out and "warden.yaml store:" in out
    assert not (project / ".warden" / "warden.db").exists()
