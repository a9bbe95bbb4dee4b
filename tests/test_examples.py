"""The examples run: the plugin template passes the contract kit, FastAPI embedding works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_template_passes_the_contract_kit() -> None:
    template = ROOT / "examples" / "plugin_template"
    env = {**os.environ, "PYTHONPATH": str(template / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(template),
         "-c", os.devnull, str(template / "tests")], capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_the_fastapi_example_passes_its_own_test() -> None:
    """examples/fastapi_helpdesk/test_app.py runs the example as its README says."""
    example = ROOT / "examples" / "fastapi_helpdesk"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(example),
         "-c", os.devnull, str(example)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.anyio
async def test_fastapi_helpdesk_embeds_the_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import json

    monkeypatch.delenv("OMNICHANNEL_CONFIG", raising=False)  # the example finds its own file
    monkeypatch.setenv("HELPDESK_DATA", str(tmp_path))
    monkeypatch.setenv("PARTNER_WEBHOOK_SECRET", "s")
    sys.path.insert(0, str(ROOT / "examples" / "fastapi_helpdesk"))
    try:
        module = importlib.import_module("app")
        hub = module.hub
        async with hub:
            transport = httpx.ASGITransport(app=module.app)
            async with httpx.AsyncClient(transport=transport, base_url="https://support.example.com") as client:
                import hashlib
                import hmac

                body = (ROOT / "examples" / "mapping" / "payload.json").read_bytes()
                sig = hmac.new(b"s", body, hashlib.sha256).hexdigest()
                response = await client.post("/hooks/webhooks/partner", content=body,
                                             headers={"x-signature": sig})
                assert response.status_code == 200
                conversations = (await client.get("/conversations")).json()
                assert len(conversations) == 1
                assert conversations[0]["participants"][0]["handle"] == "+14155550100"
                messages = await hub.store.list_messages(conversations[0]["id"])
                assert [m.text for m in messages] == ["Hi, my parcel has not arrived.", "Order #1234."]
                assert json.loads(messages[0].model_dump_json())["sender"]["display_name"] == "Ann Lee"
    finally:
        sys.path.remove(str(ROOT / "examples" / "fastapi_helpdesk"))
        sys.modules.pop("app", None)
