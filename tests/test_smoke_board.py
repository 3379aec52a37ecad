from gitswarm.board import Board
from gitswarm.task import new_task


def test_add_claim_complete_through_the_hub(hub):
    with Board(str(hub)) as board:
        a, = board.add([new_task("Parse CSS selectors")])
        got = board.claim("alice")
        assert got.id == a.id and got.claim.worker == "alice" and got.claim.token == 1
        done = board.complete(a.id, "alice", "parsed")
        assert done.status == "done" and done.result["worker"] == "alice"
    with Board(str(hub)) as fresh:
        fresh.refresh()
        assert fresh.get(a.id).status == "done"
