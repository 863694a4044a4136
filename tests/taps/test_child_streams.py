"""Child streams: one read per parent record, with parent fields in the path."""

from __future__ import annotations

import copy
import typing as t

import pytest
import responses

from taps.engine.declaration import DeclarationError, parse_declaration
from taps.engine.tap import build_tap_class
from tests.singer_run import final_state, records_of, run_tap
from tests.taps.test_engine import BASE, CONFIG, DECLARATION


def with_lines(parent: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    declaration = copy.deepcopy(DECLARATION)
    declaration["streams"]["orders"]["paginator"] = {"type": "single_page"}
    declaration["streams"]["order_lines"] = {
        "path": "/v1/orders/{order_id}/lines",
        "paginator": {"type": "single_page"},
        "parent": parent or {"stream": "orders", "context": {"order_id": "id"}},
        "primary_key": ["id"],
        "fields": {"id": {"type": "string", "pii": "none"}, "sku": {"type": "string", "pii": "none"}},
    }
    return declaration


def test_child_read_per_parent_record() -> None:
    tap_class = build_tap_class(parse_declaration(with_lines()))
    orders = [{"id": "o2", "created": 1_700_000_200}, {"id": "o1", "created": 1_700_000_100}]
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, f"{BASE}/v1/orders", json={"data": orders})
        mock.add(responses.GET, f"{BASE}/v1/orders/o2/lines", json={"data": [{"id": "l3", "sku": "A"}]})
        mock.add(responses.GET, f"{BASE}/v1/orders/o1/lines", json={"data": [{"id": "l1", "sku": "B"}, {"id": "l2", "sku": "C"}]})
        messages = run_tap(tap_class, CONFIG)

    assert [r["id"] for r in records_of(messages, "order_lines")] == ["l3", "l1", "l2"]
    assert "order_id" not in str(final_state(messages))


@pytest.mark.parametrize(
    ("parent", "message"),
    [
        pytest.param({"stream": "invoices", "context": {"order_id": "id"}}, "'invoices' is not another declared stream", id="unknown-parent"),
        pytest.param({"stream": "orders", "context": {"order_id": "number"}}, "'number' is not a field of stream 'orders'", id="unknown-field"),
        pytest.param({"stream": "orders", "context": {"order_id": "email"}}, "field 'email' is classed 'email'", id="personal-link"),
        pytest.param({"stream": "orders", "context": {"order": "id"}}, "placeholder {order_id} is not a key of parent.context", id="path-placeholder"),
    ],
)
def test_invalid_parent_rejected(parent: dict[str, t.Any], message: str) -> None:
    with pytest.raises(DeclarationError) as raised:
        parse_declaration(with_lines(parent))

    assert any(message in problem for problem in raised.value.problems), raised.value.problems
