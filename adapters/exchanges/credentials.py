"""An exchange account's API credentials, taken from the settings model (`adapters/settings.py`: environment
variables `CSE_<EXCHANGE>_API_KEY|SECRET|PASSPHRASE`, their `_FILE` variants, or Docker secrets files).

The values stay `SecretStr` until the one moment ccxt needs them (`ccxt_options`), so they never reach a
repr, a log line, an event, a metric or an error message: errors name the variable, never its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from adapters.settings import EXCHANGES, Settings

Part = Literal["key", "secret", "passphrase"]

# ccxt ids of one exchange's other markets that trade on the same account (Binance USD-M and COIN-M futures)
_ACCOUNT_OF = {"binanceusdm": "binance", "binancecoinm": "binance"}


class CredentialsError(Exception):
    """Credentials that cannot be used as configured; the message names the variables, never a value."""


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    exchange: str
    api_key: SecretStr
    secret: SecretStr
    passphrase: SecretStr | None = None

    def __repr__(self) -> str:  # SecretStr masks itself; say only which parts are there
        return f"ExchangeCredentials({self.exchange!r}, passphrase={'set' if self.passphrase else 'unset'})"

    __str__ = __repr__


def variable(exchange: str, part: Part) -> str:
    """The environment variable of one part of an exchange's credentials, e.g. `CSE_BINANCE_API_SECRET`."""
    return f"CSE_{account_of(exchange).upper()}_API_{part.upper()}"


def account_of(exchange: str) -> str:
    """The exchange whose keys a ccxt exchange id uses (`binanceusdm` -> `binance`)."""
    name = _ACCOUNT_OF.get(exchange.lower(), exchange.lower())
    if name not in EXCHANGES:
        raise CredentialsError(
            f"no credentials settings for exchange {exchange!r} (known: {', '.join(EXCHANGES)})"
        )
    return name


def credentials_for(settings: Settings, exchange: str) -> ExchangeCredentials | None:
    """The exchange's credentials, or None when none are configured (public market data needs none).

    A key without its secret (or the reverse), or a passphrase without both, is an error naming the missing
    variable: half a key pair is a configuration mistake, and running unauthenticated would hide it."""
    name = account_of(exchange)
    parts: dict[Part, SecretStr | None] = {
        part: getattr(settings, f"{name}_api_{part}") for part in ("key", "secret", "passphrase")
    }
    key, secret = parts["key"], parts["secret"]
    if key is not None and secret is not None:
        return ExchangeCredentials(name, key, secret, parts["passphrase"])
    if not any(parts.values()):
        return None
    missing = [variable(name, part) for part in ("key", "secret") if parts[part] is None]
    present = [variable(name, part) for part, value in parts.items() if value is not None]
    raise CredentialsError(
        f"{name} credentials incomplete: {', '.join(missing)} not set while {', '.join(present)} set; set the key "
        f"and the secret (each as the variable, its _FILE, or a secret file), or neither for market data only"
    )


def ccxt_options(credentials: ExchangeCredentials | None) -> dict[str, str]:
    """The credential options of a ccxt exchange constructor (`apiKey`, `secret`, `password`); empty without
    credentials. The only place the secret values are revealed: pass the dict to ccxt, never log it."""
    if credentials is None:
        return {}
    options = {
        "apiKey": credentials.api_key.get_secret_value(),
        "secret": credentials.secret.get_secret_value(),
    }
    if credentials.passphrase is not None:
        options["password"] = credentials.passphrase.get_secret_value()
    return options
