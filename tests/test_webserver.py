"""The UI's server: a real dagster-webserver answering GraphQL about the whole graph."""

import pytest

from alevor_assets.definitions import defs
from tests.conftest import graphql

QUERY = """{ assetNodes { assetKey { path } groupName description isPartitioned
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""


@pytest.mark.slow
def test_webserver_serves_the_whole_graph_with_descriptions_groups_and_checks(webserver):
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(webserver, QUERY)["assetNodes"]}
    expected = {k.to_user_string() for k in defs().resolve_asset_graph().get_all_asset_keys()}
    assert set(nodes) == expected
    assert {"tokens", "raw_trades", "bars", "features", "labels_pump_detector_2s", "training_set_pump_detector_2s",
            "model_pump_detector_2s", "validation_pump_detector_2s", "token_daily_stats"} <= set(nodes)
    assert nodes["raw_trades"]["groupName"] == "market_data" and nodes["raw_trades"]["isPartitioned"]
    assert nodes["model_pump_detector_2s"]["groupName"] == "pump_detector_2s"
    for key, node in nodes.items():
        assert node["description"] and len(node["description"]) > 40, key
    checks = {k: {c["name"]: c["blocking"] for c in n["assetChecksOrError"]["checks"]} for k, n in nodes.items()}
    for data_asset in ("tokens", "labelled_events", "bars", "features", "labels_pump_detector_2s", "training_set_pump_detector_2s", "token_daily_stats"):
        assert checks[data_asset] == {"check_contract": True}, data_asset
    assert checks["raw_trades"] == {"check_contract": True, "check_no_skipped_rows": False}
    assert checks["validation_pump_detector_2s"] == {"check_gate": False}
