"""Declaration validation: every problem reported at once, each with its path."""

from __future__ import annotations

import copy
import typing as t
from pathlib import Path

import pytest

from taps.engine.declaration import DeclarationError, load_declaration, parse_declaration
from tests.taps.test_engine import DECLARATION


def broken(change: t.Callable[[dict[str, t.Any]], None]) -> dict[str, t.Any]:
    document = copy.deepcopy(DECLARATION)
    change(document)
    return document


def problems_of(document: dict[str, t.Any]) -> list[str]:
    with pytest.raises(DeclarationError) as raised:
        parse_declaration(document)
    return raised.value.problems


def test_valid_declaration_builds_spec() -> None:
    source = parse_declaration(copy.deepcopy(DECLARATION))

    orders = source.streams[0]
    assert orders.name == "orders"
    assert orders.paginator.type == "cursor"
    assert orders.params == {"limit": 2}
    assert [f.name for f in orders.fields] == ["id", "created", "email", "total"]
    assert orders.fields[2].path == ("billing", "email")
    assert orders.fields[0].nullable is False


def test_unknown_paginator_type_lists_allowed_values() -> None:
    document = broken(lambda d: d["streams"]["orders"].update(paginator={"type": "bogus"}))

    assert problems_of(document) == [
        "streams.orders.paginator.type: 'bogus' is not one of the allowed values: cursor, next_link, offset, page_number, page_token, batches, single_page"
    ]


def test_all_problems_reported_together() -> None:
    def change(document: dict[str, t.Any]) -> None:
        document["streams"]["orders"]["fields"]["email"]["pii"] = "maybe"
        document["streams"]["orders"]["fields"]["total"]["type"] = "money"
        document["streams"]["orders"]["colour"] = "blue"

    problems = problems_of(broken(change))

    assert len(problems) == 3
    assert any(p.startswith("streams.orders.fields.email.pii: 'maybe' is not one of the allowed values: none, email") for p in problems)
    assert any(p.startswith("streams.orders.fields.total.type: 'money' is not one of") for p in problems)
    assert any(p.startswith("streams.orders: Additional properties are not allowed ('colour'") for p in problems)


def test_missing_pii_class_is_rejected() -> None:
    document = broken(lambda d: d["streams"]["orders"]["fields"]["total"].pop("pii"))

    assert problems_of(document) == ["streams.orders.fields.total: 'pii' is a required property"]


def test_primary_key_must_be_declared_field() -> None:
    document = broken(lambda d: d["streams"]["orders"].update(primary_key=["order_id"]))

    assert problems_of(document) == ["streams.orders.primary_key.0: 'order_id' is not a declared field"]


def test_template_must_name_declared_setting() -> None:
    document = broken(lambda d: d["headers"].update({"X-Account": "{config.account_id}"}))

    assert problems_of(document) == ["headers.X-Account: refers to setting 'account_id', which is not declared under settings"]


def test_replication_key_must_be_timestamp_date_or_integer() -> None:
    document = broken(lambda d: d["streams"]["orders"]["replication"].update(key="email"))

    assert "streams.orders.replication.key: 'email' must be a date-time string, a date or an integer field" in problems_of(document)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: acme\nstreams: [unclosed\n")

    with pytest.raises(DeclarationError, match="not valid YAML at line 3"):
        load_declaration(path)


def _parent(document: t.Any, path: str) -> tuple[t.Any, t.Any]:
    """Return the container of a dotted path's last step and that step (list indexes as ints)."""
    steps = [int(step) if step.isdigit() else step for step in path.split(".")]
    node = document
    for step in steps[:-1]:
        node = node[step]
    return node, steps[-1]


def _set(path: str, value: t.Any) -> t.Callable[[dict[str, t.Any]], None]:
    """Return a change that sets a dotted path in the declaration."""

    def change(document: dict[str, t.Any]) -> None:
        node, last = _parent(document, path)
        node[last] = value

    return change


def _drop(path: str) -> t.Callable[[dict[str, t.Any]], None]:
    """Return a change that deletes a dotted path from the declaration."""

    def change(document: dict[str, t.Any]) -> None:
        node, last = _parent(document, path)
        del node[last]

    return change


INVALID_DECLARATIONS = [
    pytest.param(_drop("name"), "(top level): 'name' is a required property", id="missing-name"),
    pytest.param(_set("name", "Acme Ads"), "name: 'Acme Ads' does not match", id="name-pattern"),
    pytest.param(_drop("api.base_url"), "api: 'base_url' is a required property", id="missing-base-url"),
    pytest.param(_set("auth", {"type": "kerberos"}), "auth.type: 'kerberos' is not one of the allowed values: none, bearer, api_key", id="auth-type"),
    pytest.param(_set("auth", {"type": "bearer"}), "auth: 'token' is a required property", id="bearer-without-token"),
    pytest.param(_set("settings", []), "settings: [] should be non-empty", id="no-settings"),
    pytest.param(_set("settings.0.type", "secret"), "settings.0.type: 'secret' is not one of the allowed values: string, integer", id="setting-type"),
    pytest.param(_set("streams", {}), "streams: {} should be non-empty", id="no-streams"),
    pytest.param(_set("streams.orders.path", "v1/orders"), "streams.orders.path: 'v1/orders' does not match '^/'", id="relative-path"),
    pytest.param(_set("streams.orders.primary_key", []), "streams.orders.primary_key: [] should be non-empty", id="empty-key"),
    pytest.param(_set("streams.orders.fields", {}), "streams.orders.fields: {} should be non-empty", id="no-fields"),
    pytest.param(_set("streams.orders.fields.total.pii", "maybe"), "streams.orders.fields.total.pii: 'maybe' is not one of the allowed values: none, email", id="pii-class"),
    pytest.param(_drop("streams.orders.fields.total.type"), "streams.orders.fields.total: 'type' is a required property", id="field-without-type"),
    pytest.param(_set("streams.orders.fields.total.transform", "celsius"), "streams.orders.fields.total.transform: 'celsius' is not one of the allowed values: epoch_seconds", id="transform-name"),
    pytest.param(_set("streams.orders.fields.total.transform", "yyyymmdd"), "streams.orders.fields.total.transform: yyyymmdd produces string with format date", id="transform-type"),
    pytest.param(_set("streams.orders.fields.created.timezone", "Mars/Olympus"), "streams.orders.fields.created.timezone: only the local_timestamp transform", id="timezone-without-transform"),
    pytest.param(_set("streams.orders.paginator", {"type": "cursor", "cursor": "id"}), "streams.orders.paginator: Additional properties are not allowed ('cursor'", id="paginator-option"),
    pytest.param(_set("streams.orders.replication.request_format", "unix"), "streams.orders.replication.request_format: 'unix' is not one of the allowed values: epoch_seconds, iso8601", id="request-format"),
    pytest.param(_set("streams.orders.replication.key", "missing"), "streams.orders.replication.key: 'missing' is not a declared field", id="replication-key-undeclared"),
    pytest.param(_set("streams.orders.replication.start_setting", "since"), "streams.orders.replication.start_setting: setting 'since' is not declared", id="start-setting-undeclared"),
    pytest.param(_set("streams.orders.fields.id.nullable", True), "streams.orders.fields.id.nullable: a primary-key field cannot be nullable", id="nullable-key"),
    pytest.param(_set("streams.Orders", {"path": "/x", "primary_key": ["id"], "fields": {"id": {"type": "string", "pii": "none"}}}), "streams: 'Orders' does not match", id="stream-name"),
]


@pytest.mark.parametrize(("change", "expected"), INVALID_DECLARATIONS)
def test_invalid_declaration_reports_path(change: t.Callable[[dict[str, t.Any]], None], expected: str) -> None:
    problems = problems_of(broken(change))

    assert any(problem.startswith(expected) or expected in problem for problem in problems), problems


def test_windows_need_request_param() -> None:
    def change(document: dict[str, t.Any]) -> None:
        document["streams"]["orders"]["replication"] = {"key": "created", "window_days": 7}

    assert "streams.orders.replication: window_days need request_param, the parameter that carries the lower bound" in problems_of(
        broken(change)
    )


def test_unknown_stream_default_rejected() -> None:
    problems = problems_of(broken(lambda d: d["stream_defaults"].update(replication={"key": "created"})))

    assert problems == ["stream_defaults: Additional properties are not allowed ('replication' was unexpected); remove it or check its spelling"]


def test_body_template_must_name_declared_setting() -> None:
    problems = problems_of(broken(lambda d: d["streams"]["orders"].update(body={"query": "select {config.fields}"})))

    assert problems == ["streams.orders.body.query: refers to setting 'fields', which is not declared under settings"]


def test_replication_timezone_must_exist() -> None:
    problems = problems_of(broken(lambda d: d["streams"]["orders"]["replication"].update(timezone="Mars/Olympus")))

    assert problems == ["streams.orders.replication.timezone: 'Mars/Olympus' is not an IANA time zone such as 'Europe/Berlin'"]


def test_past_sunset_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from taps.engine.tap import build_tap_class

    document = broken(lambda d: d["api"].update(version="v1", version_sunset="2020-01-01"))
    tap_class = build_tap_class(parse_declaration(document))

    with caplog.at_level(logging.WARNING):
        tap_class(config={"api_key": "k"}, parse_env_config=False)

    assert "API version v1 of acme reached its sunset on 2020-01-01" in caplog.text


def test_literal_secret_not_echoed() -> None:
    problems = problems_of(broken(lambda d: d["auth"].update(token="SECRETliteralTOKEN1234")))

    assert problems == [
        "auth.token: must be exactly one {config.NAME} placeholder; declare NAME as a secret setting instead of writing the value here"
    ]


def test_error_policy_checked_at_load() -> None:
    problems = problems_of(broken(lambda d: d["errors"].update(base_wait_seconds=10, max_wait_seconds=5)))

    assert len(problems) == 1
    assert problems[0].startswith("errors.base_wait_seconds: 10")


def test_setting_default_type_and_duplicates() -> None:
    def change(document: dict[str, t.Any]) -> None:
        document["settings"].append({"name": "tz", "type": "integer", "default": "abc"})
        document["settings"].append({"name": "tz", "type": "string"})

    problems = problems_of(broken(change))

    assert "settings.4.default: the default is not of the setting's type 'integer'" in problems
    assert "settings.5.name: 'tz' is declared twice" in problems


def test_window_days_need_end_param() -> None:
    problems = problems_of(broken(lambda d: d["streams"]["orders"]["replication"].update(window_days=7)))

    assert problems == [
        "streams.orders.replication: window_days needs request_end_param, or each window would re-read everything after its start"
    ]


def test_personal_replication_key_rejected() -> None:
    def change(document: dict[str, t.Any]) -> None:
        document["streams"]["orders"]["fields"]["seen_at"] = {"type": "string", "format": "date-time", "pii": "free_text"}
        document["streams"]["orders"]["replication"]["key"] = "seen_at"

    assert problems_of(broken(change)) == [
        "streams.orders.replication.key: 'seen_at' is classed 'free_text'; bookmarks are stored in clear, so use a field classed none"
    ]


def test_string_path_loads(tmp_path: Path) -> None:
    from taps.engine.declaration import load_declaration as load

    path = tmp_path / "source.yaml"
    path.write_text("name: acme\n")

    with pytest.raises(DeclarationError, match="'api' is a required property"):
        load(str(path))
