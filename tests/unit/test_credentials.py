"""Exchange credentials: from the variable, its `_FILE`, or the secrets directory; half a key pair and an
unreadable file are errors naming the variable; the values never show in a repr or an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.entrypoints.cli import main
from adapters.exchanges.credentials import CredentialsError, ccxt_options, credentials_for
from adapters.settings import Settings, SettingsError

pytestmark = pytest.mark.unit

KEY, SECRET, PASSPHRASE = "PLANTED-key-7f3a", "PLANTED-secret-91c2", "PLANTED-pass-55d0"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for exchange in ("BINANCE", "COINBASE", "KRAKEN", "BYBIT"):
        for part in ("KEY", "SECRET", "PASSPHRASE"):
            monkeypatch.delenv(f"CSE_{exchange}_API_{part}", raising=False)
            monkeypatch.delenv(f"CSE_{exchange}_API_{part}_FILE", raising=False)


def test_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSE_BYBIT_API_KEY", KEY)
    monkeypatch.setenv("CSE_BYBIT_API_SECRET", SECRET)
    creds = credentials_for(Settings(), "bybit")
    assert creds is not None
    assert ccxt_options(creds) == {"apiKey": KEY, "secret": SECRET}
    assert credentials_for(Settings(), "kraken") is None  # none configured: market data only
    assert ccxt_options(None) == {}


def test_from_file_variables_and_secrets_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")  # as `echo KEY > file` writes it
    (tmp_path / "secret").write_text(SECRET + "\r\n")
    monkeypatch.setenv("CSE_BINANCE_API_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("CSE_BINANCE_API_SECRET_FILE", str(tmp_path / "secret"))
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "cse_binance_api_passphrase").write_text(PASSPHRASE + "\n")
    settings = Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
    # Binance USD-M futures trade on the Binance account's keys
    assert ccxt_options(credentials_for(settings, "binanceusdm")) == {
        "apiKey": KEY, "secret": SECRET, "password": PASSPHRASE,
    }  # fmt: skip


def test_values_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSE_KRAKEN_API_KEY", KEY)
    monkeypatch.setenv("CSE_KRAKEN_API_SECRET", SECRET)
    monkeypatch.setenv("CSE_KRAKEN_API_PASSPHRASE", PASSPHRASE)
    settings = Settings()
    creds = credentials_for(settings, "kraken")
    for text in (
        repr(settings),
        str(settings),
        repr(creds),
        str(creds),
        f"{creds}",
        str(settings.model_dump()),
    ):
        assert KEY not in text and SECRET not in text and PASSPHRASE not in text


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        (["KEY"], "CSE_COINBASE_API_SECRET"),
        (["SECRET"], "CSE_COINBASE_API_KEY"),
        (["PASSPHRASE"], "CSE_COINBASE_API_KEY, CSE_COINBASE_API_SECRET"),
    ],
)
def test_half_a_key_pair_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, present: list[str], missing: str
) -> None:
    for part in present:
        monkeypatch.setenv(f"CSE_COINBASE_API_{part}", PASSPHRASE)
    with pytest.raises(CredentialsError) as error:
        credentials_for(Settings(), "coinbase")
    assert f"{missing} not set" in str(error.value)
    assert PASSPHRASE not in str(error.value)


def test_unknown_exchange_is_named() -> None:
    with pytest.raises(CredentialsError, match="'okx'"):
        credentials_for(Settings(), "okx")


def test_unreadable_file_names_the_variable_and_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CSE_BYBIT_API_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"CSE_BYBIT_API_SECRET_FILE: cannot read secret file .*absent"):
        Settings()


def test_variable_and_its_file_together_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY)
    monkeypatch.setenv("CSE_BYBIT_API_KEY", SECRET)
    monkeypatch.setenv("CSE_BYBIT_API_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(SettingsError, match="CSE_BYBIT_API_KEY and CSE_BYBIT_API_KEY_FILE are both set"):
        Settings()


def test_every_command_stops_on_an_unreadable_secret_file_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "unreadable").mkdir()  # a directory cannot be read as a file, even by root
    monkeypatch.setenv("CSE_KRAKEN_API_KEY_FILE", str(tmp_path / "unreadable"))
    assert main(["sessions"]) == 2
    err = capsys.readouterr().err
    assert "CSE_KRAKEN_API_KEY_FILE: cannot read secret file" in err and "Traceback" not in err


def test_a_bad_secret_value_is_reported_without_the_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "key").write_bytes(b"\xff" + KEY.encode())  # not text
    monkeypatch.setenv("CSE_BINANCE_API_KEY_FILE", str(tmp_path / "key"))
    assert main(["sessions"]) == 2
    err = capsys.readouterr().err
    assert "CSE_BINANCE_API_KEY_FILE" in err and "not UTF-8" in err and KEY not in err
