"""Files attached to cases: stored before the 201, listed, downloaded safely, per tenant."""

import hashlib

import httpx

from telportal.app import Platform
from tests.integration.api_helpers import assert_error
from tests.integration.world import TenantWorld

PHOTO = bytes(range(256)) * 40  # 10 KB of every byte value


async def test_attach_list_and_download(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, bravo = tenants
    case = (await client.post("/api/v1/cases", json={"subject": "Broken meter"},
                              headers=acme.agent)).json()  # fmt: skip
    base = f"/api/v1/cases/{case['id']}/attachments"
    r = await client.post(
        base, files={"file": ("../../etc/电表 photo.jpg", PHOTO, "image/jpeg")}, headers=acme.agent
    )
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["filename"] == "电表 photo.jpg"  # the path parts are gone
    assert (att["size"], att["sha256"]) == (len(PHOTO), hashlib.sha256(PHOTO).hexdigest())
    # On disk, under the data dir, named by id: the bytes are whole.
    stored = list((platform.config.data_dir / "attachments").rglob(att["id"]))
    assert len(stored) == 1 and stored[0].read_bytes() == PHOTO
    assert not list((platform.config.data_dir / "attachments").rglob("*.part"))

    listed = (await client.get(base, headers=acme.supervisor)).json()
    assert [a["id"] for a in listed] == [att["id"]]
    got = await client.get(f"{base}/{att['id']}", headers=acme.agent)
    assert got.status_code == 200 and got.content == PHOTO
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("attachment;")
    # The case's history has it.
    history = (await client.get(f"/api/v1/cases/{case['id']}/history", headers=acme.agent)).json()
    assert history[-1]["event"] == "attachment"
    assert history[-1]["details"]["filename"] == "电表 photo.jpg"
    # The lifecycle goes on after it (the history's versions stay in order).
    r = await client.post(
        f"/api/v1/cases/{case['id']}/assign", json={"assignee": "1001"}, headers=acme.agent
    )
    assert r.status_code == 200, r.text

    # A page someone attached is downloaded as bytes, never shown in our origin.
    r = await client.post(
        base, files={"file": ("x.html", b"<script>alert(1)</script>", "text/html")},
        headers=acme.agent,
    )  # fmt: skip
    page = await client.get(f"{base}/{r.json()['id']}", headers=acme.agent)
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["x-content-type-options"] == "nosniff"

    # Another tenant sees neither the case nor the file.
    assert_error(await client.get(base, headers=bravo.agent), 404, "not_found")
    assert_error(await client.get(f"{base}/{att['id']}", headers=bravo.agent), 404, "not_found")
    r = await client.post(base, files={"file": ("a.txt", b"x", "text/plain")}, headers=bravo.agent)
    assert_error(r, 404, "not_found")


async def test_bad_uploads_are_refused_and_leave_nothing(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = tenants
    case = (await client.post("/api/v1/cases", json={"subject": "x"}, headers=acme.agent)).json()
    base = f"/api/v1/cases/{case['id']}/attachments"
    assert_error(
        await client.post(base, files={"file": ("empty.txt", b"", "text/plain")},
                          headers=acme.agent),
        422, "invalid",
    )  # fmt: skip
    r = await client.post(base, data={"note": "no file"}, headers=acme.agent)
    problem = assert_error(r, 422, "invalid_request")
    assert any("file" in d["field"] for d in problem["details"])
    big = b"\0" * (20 * 1024 * 1024 + 1)
    assert_error(
        await client.post(base, files={"file": ("big.bin", big, "application/octet-stream")},
                          headers=acme.agent),
        413, "too_large",
    )  # fmt: skip
    assert_error(
        await client.post("/api/v1/cases/nope/attachments",
                          files={"file": ("a.txt", b"x", "text/plain")}, headers=acme.agent),
        404, "not_found",
    )  # fmt: skip
    assert (await client.get(base, headers=acme.agent)).json() == []
    folder = platform.config.data_dir / "attachments"
    assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]
