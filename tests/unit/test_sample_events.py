"""events/ holds a sample event for every handler: they must stay valid for the code that reads them."""

from datetime import date

from handlerkit import EVENTS, sample_event
from pricefeed.ingest.dead_letters import failure_from_catch
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.plan import PlanRequest


def load(name: str) -> dict:
    return sample_event(name.removesuffix(".json"))


def test_every_function_in_the_template_has_a_sample_event():
    functions = {p.name for p in (EVENTS.parent / "functions").iterdir() if (p / "app.py").exists()}
    names = {p.stem.split("_login")[0].split("_callback")[0] for p in EVENTS.glob("*.json")}
    assert functions <= names


def test_plan_and_ingest_events_parse():
    plan = PlanRequest.parse(load("plan_run.json"))
    assert (plan.run_id, plan.from_date, plan.to_date) == ("manual-2026-11-25", date(2026, 11, 25), date(2026, 11, 25))
    item = IngestRequest.parse(load("ingest_symbol.json"))
    assert (str(item.symbol), item.trading_date) == ("NSE:SBIN-EQ", date(2026, 11, 25))


def test_failure_event_yields_type_message_and_attempt():
    failure = failure_from_catch(load("record_failure.json")["error"])
    assert (failure.error_type, failure.attempts) == ("InvalidSymbol", 1)
    assert failure.message.startswith("history NSE:DELISTEDXYZ-EQ")


def test_oauth_events_are_http_api_payload_2():
    for name in ("oauth_login.json", "oauth_callback.json"):
        event = load(name)
        assert event["version"] == "2.0" and event["rawPath"].startswith("/oauth/")
