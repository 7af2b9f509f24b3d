"""The audit log: what each call leaves, the chains that link it, a checkpoint, tampering."""

import json

import warden
from warden.audit.checkpoint import SigningKey, make_checkpoint, read_checkpoint
from warden.audit.verify import verify_rows
from warden.errors import AuditError
from warden.store.sqlite import SQLiteStore

project = warden.load_project(".")
clock = warden.FixedClock("2026-03-02T09:00:00+00:00")
iban = "DE89 3704 0044 0532 0130 00"

with SQLiteStore.temporary() as store:
    gate = project.gate(store=store, clock=clock, ids=warden.CountingIds())
    pay = {"payee": "acme", "amount_usd": 120.0, "iban": iban}
    gate.execute(warden.ToolCall(agent="payout_bot", tool="send_payout", run_id="run_1", args=pay))
    gate.kill("all", by="oncall", reason="drill")
    gate.executor.close()
    rows = list(store.audit_rows())

for seq, stream, stream_seq, body, _hash in rows:
    print(f"{seq}  {stream:<17} #{stream_seq}  {json.loads(body)['kind']}")

decision = json.loads(rows[1][3])["data"]["decision"]
marker = decision["args"]["iban"]
print(f"\nthe iban in the log: {marker['$redacted']} removed, {marker['commitment'][:7]}… kept")

report = verify_rows(rows)
print(f"verified {report.records} records in {len(report.streams)} streams")

key = SigningKey.generate()  # `warden audit checkpoint` keeps it in .warden/audit-signing.key
signed = make_checkpoint(
    streams=report.streams, last_seq=report.last_seq, at=clock.timestamp(), key=key
)
checkpoint = read_checkpoint(signed, public_key=key.public_key_b64)


def check(what: str, rows: list[tuple[int, str, int, bytes, bytes]]) -> None:
    try:
        verify_rows(rows, checkpoint=checkpoint)
        print(f"{what:<22} verifies")
    except AuditError as exc:
        print(f"{what:<22} {exc.code} at record {exc.seq} ({exc.stream})")


seq, stream, stream_seq, body, digest = rows[2]
check("untouched", rows)
check(
    "an outcome altered",
    [*rows[:2], (seq, stream, stream_seq, body.replace(b"120", b"12"), digest), *rows[3:]],
)
check("a record deleted", rows[:1] + rows[2:])
check("the last record cut", rows[:-1])
