"""The dashboard in headless Chromium against the whole running stack (API, workers, simulator),
at a phone's width: upload, create, watch the chart move, suspend, resume, read the failures,
find a number, and the codes, opt-outs and inbound pages. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa

from broadcaster.services.apikeys import create_key
from broadcaster.services.broadcasts import get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import broadcasts
from tests.support.api import PHONES
from tests.support.browser import NARROW, open_tab

#: Recipients of the upload, and the code's rate: long enough (≈10 s) to watch it run, even on a loaded machine.
N, MPS = 40, 4
#: One in four undeliverable, so the failures list has rows.
SIM = (
    *("--dlr-delay-s", "0.2", "--seed", "7"),
    *("--dlr-mix", json.dumps({"DELIVRD": 0.75, "UNDELIV": 0.25})),
)


def get_broadcast_count(stack) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one())


def _q(selector: str) -> str:
    return f"document.querySelector({selector!r})"


async def test_upload_watch_control_and_pages_in_a_browser(make_stack, tmp_path):
    stack = make_stack(simulator_args=SIM)
    key = create_key(stack.engine, "acme").key
    add_code(stack.engine, stack.settings, "55501", "short", workspace="acme", mps=MPS)
    url = f"http://127.0.0.1:{stack.dev.api_port}/dashboard"
    csv = "phone,name\\n" + "".join(f"{p},N{i}\\n" for i, p in enumerate(PHONES[:N]))

    async with open_tab(tmp_path, url, width=NARROW) as tab, asyncio.timeout(150):
        await tab.until("!!document.getElementById('rows')")
        # Readable at 420 px: the page itself does not scroll sideways (wide tables do, inside).
        wide = await tab.js(
            "[...document.querySelectorAll('body *')]"
            f".filter(e => e.getBoundingClientRect().right > {NARROW})"
            ".map(e => e.tagName + '#' + e.id).slice(0, 10)"
        )
        assert await tab.js("document.documentElement.scrollWidth") <= NARROW, wide
        await tab.js(f"{_q('#key')}.value = {key!r}; {_q('#key-form')}.requestSubmit()")

        # Upload → create: it starts now.
        await tab.js(f"""(() => {{
            const dt = new DataTransfer();
            dt.items.add(new File(["{csv}"], "people.csv", {{type: "text/csv"}}));
            {_q("#up-file")}.files = dt.files;
            {_q("#up-from")}.value = "55501";
            {_q("#up-text")}.value = "Hi {{name}}";
        }})()""")
        # Preview: the dry run's counts, first rendered messages and ETA; nothing stored yet.
        await tab.js(_q("#up-preview") + ".click()")
        summary = await tab.until(f"{_q('#preview-summary')}?.textContent")
        assert f"Preview of people.csv: {N} messages, 0 invalid rows, 0 duplicates" in summary
        assert f"{N} segments (GSM-7), ETA {N // MPS} s at {MPS} msg/s" in summary, summary
        first_texts = (
            "[...document.querySelectorAll('#preview-rows tr')].map(r => r.children[1].textContent)"
        )
        assert await tab.js(first_texts) == [f"Hi N{i}" for i in range(5)]
        await tab.shot("narrow-preview")
        assert get_broadcast_count(stack) == 0
        await tab.js(_q("#upload-form") + ".requestSubmit()")
        created = await tab.until(
            f"{_q('#upload-result')}.textContent.includes('created') && "
            f"{_q('#upload-result')}.textContent"
        )
        assert f"{N} messages, 0 invalid rows" in created, created
        bid = int(created.split()[1])
        row = f'#rows tr[data-id="{bid}"]'
        await tab.until(f"!!{_q(row)}")
        await tab.shot("narrow-list")

        # The chart moves while it runs.
        await tab.js(_q(f'button[data-action=details][data-id="{bid}"]') + ".click()")
        first = int(
            await tab.until(
                f"Number({_q('#chart')}.dataset.sent || 0) > 0 && "
                f"Number({_q('#chart')}.dataset.sent)",
                30,
            )
        )
        assert first < N
        # Suspend from the detail pane (only the allowed actions are offered there).
        await tab.until(f"{_q('#detail-actions button[data-action=suspend]')} !== null")
        await tab.js(_q("#detail-actions button[data-action=suspend]") + ".click()")
        # the list's own refresh shows it (or the page says why it could not suspend)
        shown = await tab.until(
            f"({_q(row)}.children[3].textContent === 'SUSPENDED' || "
            f"{_q('#notice')}.textContent.startsWith('Cannot')) && "
            f"{_q(row)}.children[3].textContent + ' ' + {_q('#notice')}.textContent",
            30,
        )
        assert shown.startswith("SUSPENDED"), shown
        await tab.shot("narrow-detail-suspended")
        await tab.js(_q("#detail-actions button[data-action=resume]") + ".click()")
        await tab.until(f"{_q(row)}.children[3].textContent === 'COMPLETED'", 90)
        # ...and has moved on to every message once it completed.
        await tab.until(f"Number({_q('#chart')}.dataset.sent) === {N}", 10)

        # The failures: breakdown by reason and the undelivered messages, filterable.
        undeliv = await tab.until(
            "document.querySelectorAll('#failed tr').length > 0 && "
            "[...document.querySelectorAll('#failed tr')].map(tr => tr.dataset.to)",
            30,
        )
        assert set(undeliv) <= set(PHONES[:N])
        assert await tab.js(_q("#failed-status") + ".value") == "UNDELIV"
        # the simulator's UNDELIV receipts carry no reason: the page says so, not a bare dash
        assert "UNDELIV(no reason given)" in await tab.js(_q("#by-reason") + ".textContent")
        await tab.js(
            f"{_q('#failed-filter')}.value = {undeliv[0]!r};"
            f"{_q('#failed-filter')}.dispatchEvent(new Event('input'))"
        )
        await tab.until("document.querySelectorAll('#failed tr').length === 1")
        await tab.shot("narrow-detail-completed")

        # Retry failed: a new broadcast of the undelivered ones, made once however often asked.
        failed = get_broadcast(stack.engine, bid).counts["UNDELIV"]
        retry = "#detail-actions button[data-action=retry-failed]"
        await tab.js(_q(retry) + ".click()")
        made = await tab.until(
            f"{_q('#notice')}.textContent.includes('re-sends') && {_q('#notice')}.textContent"
        )
        assert f"re-sends the failed messages of broadcast {bid}" in made
        assert f"{failed} messages" in made, made
        again_id = int(made.split()[1])
        again_row = f'#rows tr[data-id="{again_id}"]'
        await tab.until(f"!!{_q(again_row)}")
        await tab.js(f"{_q('#notice')}.textContent = ''; {_q(retry)}.click()")
        second = await tab.until(
            f"{_q('#notice')}.textContent.includes('re-sends') && {_q('#notice')}.textContent"
        )
        assert int(second.split()[1]) == again_id
        view = get_broadcast(stack.engine, again_id)
        assert view.retry_of == bid and view.expected_messages == failed

        # Find a number across broadcasts.
        await tab.js(_q('#nav button[data-view="search"]') + ".click()")
        await tab.js(
            f"{_q('#search-number')}.value = {PHONES[0]!r}; {_q('#search-form')}.requestSubmit()"
        )
        await tab.until(f"{_q('#search-rows tr')}?.dataset.broadcast === '{bid}'")
        await tab.shot("narrow-search")

        # The codes, opt-outs and inbound pages.
        await tab.js(_q('#nav button[data-view="codes"]') + ".click()")
        await tab.until(f"{_q('#code-rows')}.textContent.includes('55501')")
        await tab.shot("narrow-codes")
        for name in ("optouts", "inbound"):
            await tab.js(_q(f'#nav button[data-view="{name}"]') + ".click()")
            await tab.until(f"{_q('#' + name + '-note')}.textContent.includes('(')")
            await tab.shot(f"narrow-{name}")
        shown = await tab.js(f"{_q('#notice')}.hidden ? '' : {_q('#notice')}.className")
        assert shown in ("", "info"), await tab.js(_q("#notice") + ".textContent")

        # A wrong key is cleared at once.
        await tab.js(f"{_q('#key')}.value = 'bk_wrong_key'; {_q('#key-form')}.requestSubmit()")
        await tab.until(f"{_q('#notice')}.textContent.includes('refused the key')")
        assert await tab.js(_q("#key-state") + ".textContent") == "no key"
        assert await tab.js("sessionStorage.getItem('broadcaster.apiKey')") is None
        assert not await tab.js(_q("#welcome") + ".hidden")
