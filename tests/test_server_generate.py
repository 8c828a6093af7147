"""The generate stand-in of `flowgraph serve` (engine/server/generate.py) through scenario-sdk,
with strict response validation: inference jobs beside workflow jobs, assets, idempotency keys,
dry runs, prompts, and bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from scenario_sdk import APIStatusError, Scenario

from engine.server.launcher import running_server


def wait(sdk: Scenario, job_id: str) -> str:
    deadline = time.monotonic() + 30
    while (status := sdk.jobs.retrieve(job_id).job.status) not in ("success", "failure"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return status


def test_the_generate_stand_in_answers_as_scenarios_api(tmp_path: Path) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"model_flux": 3}))
    with (
        running_server(tmp_path / "db", "--costs", str(costs), "--fail", "model_broken") as url,
        Scenario(
            base_url=url, api_key="k", api_secret="s", _strict_response_validation=True
        ) as sdk,
    ):
        body = {"prompt": "a fox", "numSamples": 2}
        key = {"Idempotency-Key": "one-generation"}
        first = sdk.generate.run_model("model_flux", body=body, extra_headers=key).job
        again = sdk.generate.run_model("model_flux", body=body, extra_headers=key).job
        assert first.job_type == "inference" and again.job_id == first.job_id
        assert wait(sdk, first.job_id) == "success"
        job = sdk.jobs.retrieve(first.job_id).job
        assert job.metadata.input == body and len(job.metadata.asset_ids or []) == 2
        assert [h.status for h in job.status_history][-1] == "success" and job.progress == 1
        asset = sdk.assets.retrieve((job.metadata.asset_ids or [])[0]).asset
        assert asset.kind == "image" and asset.mime_type == "image/png"
        assert asset.metadata.parent_job_id == first.job_id

        broken = sdk.generate.run_model("model_broken", body={}).job
        assert wait(sdk, broken.job_id) == "failure"
        error = sdk.jobs.retrieve(broken.job_id).job.metadata.error or ""
        assert error.endswith("dry-run failure injected for `model_broken` (--fail)")

        estimate = sdk.generate.with_raw_response.run_model("model_flux", body={}, dry_run="true")
        assert estimate.status_code == 269
        assert estimate.http_response.json() == {
            "creativeUnitsCost": 3.0,
            "creativeUnitsDiscount": 0,
            "job": {},
        }
        prompt = sdk.generate.prompt(mode="completion", prompt="a paper boat")
        assert prompt.job.job_type == "generate-prompt" and prompt.job.status == "success"
        assert prompt.prompts == ["dry-run prompt from `prompt`: a paper boat"]

        kinds = {j.job_id: j.job_type for j in sdk.jobs.list().jobs}
        assert kinds[first.job_id] == "inference" and kinds[prompt.job.job_id] == "generate-prompt"

        with pytest.raises(APIStatusError) as refused:
            sdk.generate.run_model("model_flux", body=["not", "an", "object"])
        assert refused.value.status_code == 400
        assert "a JSON object of the model's inputs" in str(refused.value)
        with pytest.raises(APIStatusError) as unknown:
            sdk.assets.retrieve("asset_unknown")
        assert unknown.value.status_code == 404
