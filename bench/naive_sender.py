"""The baseline a hand-rolled script would be: one Celery task per SMS, one HTTP POST each."""

from __future__ import annotations

import os

import requests
from celery import Celery

app = Celery("naive", broker=os.environ["NAIVE_BROKER"])
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4, task_acks_late=True)
_session = requests.Session()


@app.task(name="naive.send_one")
def send_one(base_url: str, api_key: str, msg: dict) -> None:
    _session.post(f"{base_url}/messages", json=msg, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
