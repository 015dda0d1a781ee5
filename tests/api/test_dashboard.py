"""``GET /dashboard``: the static page, its headers, and the page driven for real in
headless Chromium (Playwright) against the API on a real port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import subprocess

import pytest

from broadcaster.api import dashboard
from tests.support import browser
from tests.support.api import PHONES
from tests.support.browser import open_tab

NODE = shutil.which("node")
#: Every v1 call the page makes, as it appears in its script.
USED_ROUTES = (
    '"/v1/broadcasts?"',
    '"/v1/broadcasts/"',
    '["POST", "/suspend"]',
    '["POST", "/resume"]',
    '["POST", "/stop"]',
    '["DELETE", ""]',
    '"/errors?limit=100"',
    '"/report?format="',
    '"/v1/codes"',
    '"POST", "/v1/broadcasts"',
)


def _script(html: str) -> str:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    return scripts[0]


async def test_page_is_served_without_a_key(api):
    resp = await api.client.get("/dashboard")
    assert resp.status == 200
    assert resp.content_type == "text/html" and resp.charset == "utf-8"
    html = await resp.text()
    assert html.startswith("<!doctype html>") and "<title>" in html
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    head = await api.client.head("/dashboard")
    assert head.status == 200


async def test_page_is_self_contained(api):
    html = await (await api.client.get("/dashboard")).text()
    # No CDN, font, analytics or any other host: the network may be closed, and the key stays here.
    assert not re.search(r"(?i)https?:|//[a-z0-9.-]+\.[a-z]{2,}/", html), re.findall(
        r"(?i)\S*https?:\S*", html
    )
    assert not re.search(r"(?i)<(link|iframe|img|object|embed|base)\b|<script\s+src", html)
    style = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(style) == 1 and not re.search(r"(?i)@import|url\(", style[0])
    # The key lives in sessionStorage, goes out only as a bearer header, never in a URL.
    assert "sessionStorage" in html and "localStorage" not in html
    assert '"Bearer " + key' in html and "?key=" not in html and "&key=" not in html


async def test_page_inserts_data_as_text_only(api):
    script = _script(await (await api.client.get("/dashboard")).text())
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setTimeout("',
        "javascript:",
    ):
        assert sink not in script, sink
    assert "textContent" in script and "createTextNode" in script


async def test_page_references_the_v1_routes_it_uses(api):
    script = _script(await (await api.client.get("/dashboard")).text())
    for route in USED_ROUTES:
        assert route in script, route
    # The list answer's shape the page reads: items and nextCursor.
    await api.broadcast()
    page = await api.json("GET", "/v1/broadcasts?limit=50", 200)
    assert (
        set(page) == {"items", "nextCursor"}
        and "page.items" in script
        and "page.nextCursor" in script
    )
    for member in (
        "id",
        "name",
        "shortcode",
        "status",
        "expectedMessages",
        "sentMessages",
        "deliveredMessages",
        "failedMessages",
        "startDate",
        "endDate",
    ):
        assert member in page["items"][0] and f"b.{member}" in script, member
    # The upload form's multipart fields are the ones POST /v1/broadcasts reads.
    for field in ('"file"', '["from"', '["text"', '["name"', '["startDate"', '["timezone"'):
        assert field in script, field


async def test_content_security_policy_allows_only_the_inline_page(api):
    resp = await api.client.get("/dashboard")
    html = await resp.text()
    csp = dict(
        part.strip().split(" ", 1) for part in resp.headers["Content-Security-Policy"].split(";")
    )
    digest = base64.b64encode(hashlib.sha256(_script(html).encode()).digest()).decode()
    assert csp["script-src"] == f"'sha256-{digest}'"
    assert (
        csp["default-src"] == "'none'"
        and csp["connect-src"] == "'self'"
        and csp["frame-ancestors"] == "'none'"
    )
    assert "unsafe" not in resp.headers["Content-Security-Policy"]


async def test_only_the_page_itself_is_public(api):
    for path in ("/dashboard/", "/dashboard/x", "/dashboardx", "/v1/dashboard"):
        resp = await api.client.get(path)
        assert resp.status == 401, path
    assert (await api.client.post("/dashboard")).status == 405
    assert (await api.client.get("/v1/broadcasts")).status == 401


@pytest.mark.skipif(
    NODE is None, reason="node is not installed: the script's syntax is not checked"
)
def test_script_parses(tmp_path):
    js = tmp_path / "dashboard.js"
    js.write_text(_script(dashboard.PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    run = subprocess.run([NODE, "--check", str(js)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr


# ---- The real page in headless Chromium --------------------------------------------------------


def test_a_missing_browser_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", None)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="under CI"):
        browser.require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        browser.require_chromium()


def _q(selector: str) -> str:
    return f"document.querySelector({selector!r})"


async def test_the_page_in_a_real_browser(api, tmp_path):
    hostile = '<img src=x onerror="window.pwned=1">'
    first = await api.broadcast(
        [{"to": PHONES[0], "params": ["a"]}, "123"],
        name=hostile,
        startDate="01-03-2031 09:30",
        timezone="America/Mexico_City",
    )
    second = await api.broadcast(name="second")
    await api.json("POST", f"/v1/broadcasts/{second['id']}/stop", 200)
    key = api.keys["acme"]
    url = str(api.client.make_url("/dashboard"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    async with open_tab(tmp_path, url) as cdp, asyncio.timeout(90):
        await cdp.until("document.readyState === 'complete' && !!document.getElementById('rows')")
        assert await cdp.js(_q("#key-state") + ".textContent") == "no key"
        # The first screen says how to get a key.
        assert "broadcaster apikey create --workspace" in await cdp.js(
            _q("#welcome") + ".textContent"
        )
        await cdp.shot("welcome")
        # Every time in the one zone the user picks (kept for the tab).
        await cdp.js(
            f"{_q('#tz')}.value = 'America/Mexico_City';"
            f"{_q('#tz')}.dispatchEvent(new Event('change'))"
        )

        # The key goes into sessionStorage and nowhere else.
        await cdp.js(f"{_q('#key')}.value = {key!r}; {_q('#key-form')}.requestSubmit()")
        assert await cdp.js("sessionStorage.getItem('broadcaster.apiKey')") == key
        assert await cdp.js(_q("#welcome") + ".hidden")
        assert (
            key not in await cdp.js("location.href") and await cdp.js(_q("#key") + ".value") == ""
        )

        # The table: both broadcasts, the hostile name shown as text, never run as markup.
        await cdp.until("document.querySelectorAll('#rows tr').length === 2")
        await cdp.shot("list")
        row = f'#rows tr[data-id="{first["id"]}"]'
        assert await cdp.js(f"{_q(row)}.children[1].textContent") == hostile
        assert await cdp.js("document.querySelectorAll('#rows img').length") == 0
        assert await cdp.js("window.pwned === undefined")
        assert await cdp.js(f"{_q(row)}.children[2].textContent") == "55501"
        assert await cdp.js(f"{_q(row)}.children[5].textContent") == "2031-03-01 09:30:00-06:00"
        assert (await cdp.js(f"{_q(row)}.children[4].textContent")).startswith("1 / 0 / 0 / 0")
        assert await cdp.js(f"{_q(row)}.querySelectorAll('.progress > div').length") == 3
        # a scheduled one's ETA is its sending time, said to count from its start
        assert (await cdp.js(_q(f"{row} .eta") + ".textContent")).endswith(" once it starts")
        assert await cdp.js("document.querySelector('#codes option').value") == "55501"

        # Suspend: the API changes it and the next refresh (every 2 s) shows it.
        # A scheduled broadcast can be rescheduled (the time typed in the zone shown) or cancelled.
        labels = f"[...{_q(row)}.querySelectorAll('td.actions button')].map(b => b.textContent)"
        assert await cdp.js(labels) == ["details", "suspend", "reschedule", "cancel", "delete"]
        await cdp.js(
            "window.prompt = (m, d) => { window.asked = [m, d]; return '2031-03-01 10:45'; };"
            + _q(f'button[data-action=reschedule][data-id="{first["id"]}"]')
            + ".click()"
        )
        await cdp.until(f"{_q(row)}.children[5].textContent === '2031-03-01 10:45:00-06:00'")
        assert await cdp.js("window.asked[1]") == "2031-03-01 09:30"
        assert "America/Mexico_City" in await cdp.js("window.asked[0]")
        moved = await api.json("GET", f"/v1/broadcasts/{first['id']}", 200)
        assert moved["startDate"] == "2031-03-01T10:45:00-06:00"
        assert moved["timezone"] == "America/Mexico_City"  # its own zone is kept
        await cdp.js(_q(f'button[data-action=suspend][data-id="{first["id"]}"]') + ".click()")
        await cdp.until(_q("#notice") + ".textContent.includes('SUSPENDED')")
        assert (await api.json("GET", f"/v1/broadcasts/{first['id']}", 200))[
            "status"
        ] == "SUSPENDED"
        await cdp.until(f"{_q(row)}.children[3].textContent === 'SUSPENDED'", 5)

        # Only the actions the state allows: a suspended one resumes, a stopped one only goes.
        buttons = (
            "[...document.querySelectorAll('{} td.actions button')].map(b => b.dataset.action)"
        )
        assert await cdp.js(buttons.format(row)) == ["details", "resume", "stop", "delete"]
        assert await cdp.js(buttons.format(f'#rows tr[data-id="{second["id"]}"]')) == [
            "details",
            "delete",
        ]
        # The list shows progress and the ETA.
        assert "0% · ETA" in await cdp.js(f"{_q(row)}.children[4].textContent")
        # Another zone: the same instant, said in UTC.
        await cdp.js(f"{_q('#tz')}.value = 'UTC'; {_q('#tz')}.dispatchEvent(new Event('change'))")
        await cdp.until(f"{_q(row)}.children[5].textContent === '2031-03-01 16:45:00+00:00'")
        await cdp.until(f"{_q('#updated')}.textContent.endsWith('+00:00')")  # every time
        assert await cdp.js(_q("#up-tz") + ".value") == "UTC"  # an upload's zone follows
        await cdp.js(
            f"{_q('#tz')}.value = 'America/Mexico_City';"
            f"{_q('#tz')}.dispatchEvent(new Event('change'))"
        )
        await cdp.until(f"{_q(row)}.children[5].textContent === '2031-03-01 10:45:00-06:00'")
        await cdp.until(f"{_q('#updated')}.textContent.endsWith('-06:00')")

        # Filter by status.
        await cdp.js(
            f"{_q('#status-filter')}.value = 'SUSPENDED';"
            f"{_q('#status-filter')}.dispatchEvent(new Event('change'))"
        )
        await cdp.until(
            "document.querySelectorAll('#rows tr').length === 1 && "
            f"{_q('#rows tr')}.dataset.id === '{first['id']}'"
        )

        # Detail pane: fields, the row errors, and the report saved from a Blob.
        await cdp.js(_q(f'button[data-action=details][data-id="{first["id"]}"]') + ".click()")
        await cdp.until("document.querySelectorAll('#errors tr').length === 1")
        assert await cdp.js(
            "[...document.querySelectorAll('#errors td')].map(td => td.textContent)"
        ) == ["2", "123", "too_short"]
        assert await cdp.js(_q("#detail-title") + ".textContent") == f"Broadcast {first['id']}"
        assert hostile in await cdp.js(_q("#detail-fields") + ".textContent")
        await cdp.shot("detail")
        async with cdp.page.expect_download() as download:
            await cdp.js(_q("#report-csv") + ".click()")
        saved = downloads / (await download.value).suggested_filename
        await (await download.value).save_as(saved)
        state = await cdp.until(
            f"{_q('#report-state')}.textContent.startsWith('saved') && "
            f"{_q('#report-state')}.textContent"
        )
        assert f"broadcast-{first['id']}.csv" in state
        assert saved.name == f"broadcast-{first['id']}.csv"
        assert saved.read_bytes().startswith(b"\xef\xbb\xbfid,line,to,status")

        # Upload a file: the new broadcast and its invalid rows.
        csv = f"phone,name\\n{PHONES[5]},Ana\\n12345,Bob\\n"
        await cdp.js(f"""(() => {{
            const dt = new DataTransfer();
            dt.items.add(new File(["{csv}"], "people.csv", {{type: "text/csv"}}));
            {_q("#up-file")}.files = dt.files;
            {_q("#up-from")}.value = "55501";
            {_q("#up-text")}.value = "Hi {{name}}";
            {_q("#up-tz")}.value = "America/Mexico_City";
            {_q("#up-start")}.value = "2031-05-01T10:00";
            {_q("#upload-form")}.requestSubmit();
        }})()""")
        result = await cdp.until(
            f"{_q('#upload-result')}.querySelectorAll('tbody tr').length === 1 && "
            f"{_q('#upload-result')}.textContent"
        )
        assert (
            "created: SCHEDULED, start 2031-05-01 10:00:00-06:00, 1 messages, 1 invalid rows"
            in result
        )
        assert "12345" in result and "too_short" in result
        # A refused upload shows the detail and the field.
        await cdp.js(f"{_q('#up-from')}.value = '99999'; {_q('#upload-form')}.requestSubmit()")
        refused = await cdp.until(
            f"{_q('#upload-result')}.textContent.startsWith('Not created') && "
            f"{_q('#upload-result')}.textContent"
        )
        assert "422" in refused and "99999" in refused and "field from" in refused

        # Delete (after the confirm dialog).
        await cdp.js(
            "window.confirm = (m) => { window.asked = m; return true; };"
            f"{_q('#status-filter')}.value = '';"
            f"{_q('#status-filter')}.dispatchEvent(new Event('change'))"
        )
        await cdp.until("document.querySelectorAll('#rows tr').length === 3")
        # A change made elsewhere shows up by the page's own refresh (every 2 s).
        await api.json("POST", f"/v1/broadcasts/{first['id']}/stop", 200)
        await cdp.until(f"{_q(row)}.children[3].textContent === 'STOPPED'", 5)
        await cdp.js(_q(f'button[data-action=delete][data-id="{second["id"]}"]') + ".click()")
        await cdp.until(_q("#notice") + ".textContent.includes('DELETED')")
        asked = await cdp.js("window.asked")
        assert f"Delete broadcast {second['id']}" in asked and "3 messages" in asked, asked
        assert "row errors" in asked and "cannot be undone" in asked
        await cdp.until("document.querySelectorAll('#rows tr').length === 2", 5)
        await api.json("GET", f"/v1/broadcasts/{second['id']}", 404)

        # API keys: a new one's secret is shown once; revoke (after the confirm dialog).
        await cdp.js(_q('#nav button[data-view="keys"]') + ".click()")
        await cdp.until("document.querySelectorAll('#key-rows tr').length === 1")  # acme's
        await cdp.js(_q("#key-create") + ".click()")
        made = await cdp.until(f"{_q('#key-secret')}?.textContent")
        prefix = made.split("_")[1]
        await cdp.until(f"!!{_q(f'#key-rows tr[data-prefix={prefix!r}]')}")
        await cdp.shot("keys")
        new = {"Authorization": f"Bearer {made}"}
        assert (await api.client.get("/v1/broadcasts", headers=new)).status == 200
        await cdp.js(_q(f"button[data-revoke={prefix!r}]") + ".click()")
        await cdp.until(f"{_q('#notice')}.textContent.includes('revoked')")
        assert (await api.client.get("/v1/broadcasts", headers=new)).status == 401
        await cdp.js(_q('#nav button[data-view="codes"]') + ".click()")
        assert await cdp.js(_q("#key-made") + ".hidden")
        assert made not in await cdp.js("document.body.textContent")

        # Forgetting the key empties the page and the storage.
        await cdp.js(_q("#forget") + ".click()")
        assert await cdp.js("Object.keys(sessionStorage)") == ["broadcaster.timeZone"]
        assert await cdp.js("document.querySelectorAll('#rows tr').length") == 0


def _closed_window_in_mexico_city() -> str:
    """Two hours starting two hours from now in Mexico City: closed for +52 55 numbers now."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    hour = datetime.now(UTC).astimezone(ZoneInfo("America/Mexico_City")).hour
    return f"{(hour + 2) % 24:02d}:00-{(hour + 4) % 24:02d}:00"


async def test_the_detail_says_how_many_wait_for_their_window(api, tmp_path):
    # Given a broadcast whose send window is closed now for its Mexico City recipients
    window = _closed_window_in_mexico_city()
    made = await api.broadcast(name="quiet", window=window, validity="2h")
    view = await api.json("GET", f"/v1/broadcasts/{made['id']}", 200)
    assert view["waitingForWindow"] == 3 and view["nextWindowAt"], view
    url = str(api.client.make_url("/dashboard"))
    async with open_tab(tmp_path, url) as cdp, asyncio.timeout(60):
        await cdp.until("document.readyState === 'complete' && !!document.getElementById('rows')")
        key = api.keys["acme"]
        await cdp.js(f"{_q('#key')}.value = {key!r}; {_q('#key-form')}.requestSubmit()")
        await cdp.until("document.querySelectorAll('#rows tr').length === 1")
        # When its detail is opened
        await cdp.js(_q(f'button[data-action=details][data-id="{made["id"]}"]') + ".click()")
        await cdp.until(_q("#detail-fields") + ".textContent.includes('Waiting for their window')")
        # Then it shows the window, how many wait, when the next one opens, and the validity
        shown = await cdp.js(_q("#detail-fields") + ".textContent")
        assert window in shown and "3, next opens" in shown, shown
        assert "Validity2 h 0 min from its start" in shown, shown
        await cdp.shot("detail-window")


async def test_contacts_lists_and_templates_have_their_pages(api, tmp_path):
    """Issue 15's audiences on the console: the lists with their member counts (a list's
    "members" opens its contacts), the contacts with identifiers, attributes and lists, found
    by number, and the prepared messages; another workspace's never shown."""
    for i, phone in enumerate(PHONES[:3]):
        lists = ["vip"] if i < 2 else ["newsletter"]
        body = {
            "identifiers": [{"type": "MOBILE", "value": phone}],
            "attributes": {"first_name": f"Ana{i}"},
            "lists": lists,
        }
        await api.json("POST", "/v1/contacts", 201, json=body)
    other = {"identifiers": [{"type": "MOBILE", "value": PHONES[5]}], "lists": ["theirs"]}
    await api.json("POST", "/v1/contacts", 201, "globex", json=other)
    template = {"name": "otp", "text": "Hi {first_name}, code {0}", "from": "55501", "list": "vip"}
    await api.json("POST", "/v1/templates", 201, json=template)
    url = str(api.client.make_url("/dashboard"))

    async with open_tab(tmp_path, url, width=browser.NARROW) as cdp, asyncio.timeout(60):
        await cdp.until("!!document.getElementById('rows')")
        await cdp.js(
            f"{_q('#key')}.value = {api.keys['acme']!r}; {_q('#key-form')}.requestSubmit()"
        )

        await cdp.js(_q('#nav button[data-view="lists"]') + ".click()")
        await cdp.until("document.querySelectorAll('#list-rows tr').length === 2")
        lists = await cdp.js(
            "[...document.querySelectorAll('#list-rows tr')]"
            ".map(tr => [tr.children[1].textContent, tr.children[2].textContent])"
        )
        assert sorted(lists) == [["newsletter", "1"], ["vip", "2"]]
        assert await cdp.js("document.documentElement.scrollWidth") <= browser.NARROW
        await cdp.shot("narrow-lists")

        # A list's members: the contacts page, filtered by it.
        await cdp.js(_q('#list-rows button[data-members="vip"]') + ".click()")
        await cdp.until(
            f"{_q('#contacts-list')}.value === 'vip' && "
            "document.querySelectorAll('#contact-rows tr').length === 2"
        )
        shown = await cdp.js(_q("#contact-rows") + ".textContent")
        assert f"MOBILE {PHONES[0]}" in shown and "first_name=Ana1" in shown and "vip" in shown
        assert PHONES[2] not in shown
        await cdp.shot("narrow-contacts")
        # All of them, then one found by its number.
        await cdp.js(f"{_q('#contacts-list')}.value = ''; {_q('#contacts-form')}.requestSubmit()")
        await cdp.until("document.querySelectorAll('#contact-rows tr').length === 3")
        assert PHONES[5] not in await cdp.js(_q("#contact-rows") + ".textContent")
        await cdp.js(
            f"{_q('#contacts-mobile')}.value = {PHONES[2]!r}; {_q('#contacts-form')}.requestSubmit()"
        )
        await cdp.until("document.querySelectorAll('#contact-rows tr').length === 1")
        assert "newsletter" in await cdp.js(_q("#contact-rows") + ".textContent")

        await cdp.js(_q('#nav button[data-view="templates"]') + ".click()")
        await cdp.until("document.querySelectorAll('#template-rows tr').length === 1")
        row = await cdp.js(
            "[...document.querySelector('#template-rows tr').children].map(td => td.textContent)"
        )
        assert row[1:5] == ["otp", "55501", "vip", "Hi {first_name}, code {0}"]
        await cdp.shot("narrow-templates")
        assert await cdp.js(f"{_q('#notice')}.hidden")
