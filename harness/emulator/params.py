"""Parameter validation as Stripe does it: each failure is a 400 that saves nothing."""

from __future__ import annotations

from typing import Any

from harness.emulator.errors import StripeError

# Stripe's presentment currencies (the list its "Invalid currency" error names).
CURRENCIES = frozenset(
    """usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl
    bsd bwp byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp
    gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf
    krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn
    nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr
    sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv
    wst xaf xcd xof xpf yer zar zmw""".split()  # noqa: SIM905
)
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Stripe's published minimum charge per settlement currency, in the smallest unit.
# Other currencies are converted by Stripe before the check; the emulator, which
# has no exchange rates, does not check them.
MINIMUM_AMOUNT = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip
MAX_AMOUNT = 99_999_999
# From this API version on, an intent created without payment_method_types or
# automatic_payment_methods has automatic payment methods on, redirects allowed.
AUTOMATIC_BY_DEFAULT_SINCE = "2023-08-16"
RETURN_URL_REQUIRED = (
    "A `return_url` must be specified because this Payment Intent is configured to "
    "automatically accept the payment methods enabled in the Dashboard, some of which may "
    "require a full page redirect to succeed. If you do not want to accept redirect-based "
    "payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents "
    "and Payment Intents."
)
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def display(amount: int, currency: str) -> str:
    """`$0.50`, `¥50`, `0.30 chf`-style figures for Stripe's messages."""
    if currency in ZERO_DECIMAL:
        figure = f"{amount:,}"
    elif currency in THREE_DECIMAL:
        figure = f"{amount / 1000:,.3f}"
    else:
        figure = f"{amount / 100:,.2f}"
    return _SYMBOLS.get(currency, "") + figure


def reject_unknown(params: dict[str, Any], known: frozenset[str] | set[str]) -> None:
    for key in params:
        if key not in known:
            raise StripeError.invalid_param(
                f"Received unknown parameter: {key}", param=key, code="parameter_unknown"
            )


def currency(value: Any) -> str:
    if value is None:
        raise StripeError.invalid_param(
            "Missing required param: currency.", param="currency", code="parameter_missing"
        )
    code = str(value).lower() if isinstance(value, str) else ""
    if code not in CURRENCIES:
        raise StripeError.invalid_param(
            f"Invalid currency: {value}. Stripe currently supports these currencies: "
            + ", ".join(["usd", *sorted(CURRENCIES - {"usd"})]),
            param="currency",
            code="parameter_invalid_string" if not code else None,
        )
    return code


def integer(value: Any, param: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or not value.isascii():
        raise StripeError.invalid_param(
            f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
        )
    return int(value)


def amount(value: Any, currency_code: str, param: str = "amount") -> int:
    if value is None:
        raise StripeError.invalid_param(
            f"Missing required param: {param}.", param=param, code="parameter_missing"
        )
    number = integer(value, param)
    minimum = MINIMUM_AMOUNT.get(currency_code, 1)
    if number < minimum:
        raise StripeError.invalid_param(
            f"Amount must be at least {display(minimum, currency_code)} {currency_code}",
            param=param,
            code="amount_too_small",
        )
    if number > MAX_AMOUNT:
        raise StripeError.invalid_param(
            f"Amount must be no more than {display(MAX_AMOUNT, currency_code)}",
            param=param,
            code="amount_too_large",
        )
    if currency_code in THREE_DECIMAL and number % 10:
        raise StripeError.invalid_param(
            f"Amounts in {currency_code} must be a multiple of 10 (the last digit must be 0).",
            param=param,
            code="invalid_amount",
        )
    return number


def boolean(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return bool(value == "true")
    raise StripeError.invalid_param(f"Invalid boolean: {value}", param=param)


def optional_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StripeError.invalid_param(f"Invalid string: {key}", param=key)
    return value


def choice(params: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = optional_str(params, key)
    if value is not None and value not in allowed:
        raise StripeError.invalid_param(
            f"Invalid {key}: must be one of {', '.join(allowed)}", param=key
        )
    return value


def metadata(value: Any) -> dict[str, str]:
    """A metadata hash; an empty string for a key asks to unset it (kept as "")."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError.invalid_param("Invalid hash", param="metadata")
    if len(value) > 50:
        raise StripeError.invalid_param("metadata has more than 50 keys", param="metadata")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 40 or len(item) > 500:
            raise StripeError.invalid_param(f"Invalid metadata[{key}]", param="metadata")
        out[key] = item
    return out


def string_list(value: Any, param: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise StripeError.invalid_param(f"Invalid array: {param}", param=param)
    return list(items)


# -- PaymentIntent parameters that decide how a confirmation may go ------------------------


def automatic_methods(
    value: Any, types: list[str] | None, api_version: str
) -> dict[str, Any] | None:
    """The intent's `automatic_payment_methods`, Stripe's default included."""
    if value is None:
        if types is not None or api_version < AUTOMATIC_BY_DEFAULT_SINCE:
            return None
        return {"allow_redirects": "always", "enabled": True}
    if not isinstance(value, dict):
        raise StripeError.invalid_param("Invalid hash", param="automatic_payment_methods")
    reject_unknown(
        {f"automatic_payment_methods[{k}]": v for k, v in value.items()},
        {"automatic_payment_methods[enabled]", "automatic_payment_methods[allow_redirects]"},
    )
    if "enabled" not in value:
        raise StripeError.invalid_param(
            "Missing required param: automatic_payment_methods[enabled].",
            param="automatic_payment_methods[enabled]",
            code="parameter_missing",
        )
    if not boolean(value["enabled"], "automatic_payment_methods[enabled]"):
        return None
    if types is not None:
        raise StripeError.invalid_param(
            "You may only specify one of these parameters: automatic_payment_methods, "
            "payment_method_types."
        )
    allow = choice(value, "allow_redirects", ("always", "never")) or "always"
    return {"allow_redirects": allow, "enabled": True}


def require_return_url(automatic: dict[str, Any] | None, return_url: str | None) -> None:
    if automatic is not None and automatic["allow_redirects"] != "never" and not return_url:
        raise StripeError.invalid_param(RETURN_URL_REQUIRED)


def off_session(params: dict[str, Any]) -> bool:
    value = params.get("off_session")
    if value is None or value == "false":
        return False
    if value in ("true", "one_off", "recurring"):
        return True
    raise StripeError.invalid_param(f"Invalid off_session: {value}", param="off_session")
