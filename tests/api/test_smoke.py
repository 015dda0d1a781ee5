from tests.api.conftest import PHONES


async def test_send_one(api):
    body = await api.json("POST", "/v1/messages", 202, json={"from": "55501", "to": PHONES[0], "text": "hello"})
    assert body["status"] == "QUEUE"
    got = await api.json("GET", f"/v1/messages/{body['id']}", 200)
    assert got["to"] == PHONES[0]
