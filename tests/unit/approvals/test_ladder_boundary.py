"""A click at every moment of the approval ladder, deterministically: what the approver is
told is what the workflow does.

The ladder is walked as the accounts-payable ASL wires it (its callback stages, their
``Catch`` routes, the expiry and outcome steps and the ``Choice`` after them are read from
``statemachines/accounts-payable.asl.json``), with the real ``approval-request`` and
``slack-interactions`` logic on fakes. A fake Step Functions closes a task's token when the
task times out and, in ``drops_early`` mode, silently drops a response sent before the
task's invoke has returned (what the local interpreter did). The click is injected at each
named moment; no thread and no clock is involved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from aios.approvals.models import Status, approval_id_for
from aios.approvals.responder import TaskClosed
from aios.approvals.store import ApprovalConflict
from aios.errors import ApprovalDecided
from aios.lineage import LineageContext
from infrastructure.platform import PLATFORM
from tests.unit.approvals.approval_fakes import EXECUTION, FakeStore, click_body, stage_event
from tests.unit.approvals.conftest import World
from tests.unit.approvals.test_slack_interactions import click

APPROVAL_ID = approval_id_for(EXECUTION)
DEFINITION = json.loads(PLATFORM.workflow("accounts-payable").read_definition())["States"]
START = "Ask an approver in Slack"
#: Where the ladder hands over to the rest of the workflow, and what that means.
ENDS = {
    "Post the invoice to the ERP": "approved",
    "Rejected by the approver": "rejected",
    "Rejected: nobody answered": "expired",
    "Could not be processed": "failed",
}


class LadderSfn:
    """Step Functions as far as task tokens go."""

    def __init__(self, *, drops_early: bool) -> None:
        self.drops_early = drops_early
        self.starting: set[str] = set()
        self.waiting: set[str] = set()
        self.outcomes: dict[str, dict[str, Any]] = {}

    def _answer(self, token: str, outcome: dict[str, Any]) -> None:
        if token in self.starting:
            if self.drops_early:
                return  # accepted by the API, lost by the interpreter
        elif token not in self.waiting:
            raise TaskClosed("TaskTimedOut")
        self.outcomes.setdefault(token, outcome)

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._answer(token, {"kind": "success", "output": output})

    def fail(self, token: str, *, error: str, cause: dict[str, Any]) -> None:
        self._answer(token, {"kind": "failure", "error": error, "cause": cause})


class HookedStore(FakeStore):
    """Calls ``after_renew`` once a stage has stored its token (inside its invoke)."""

    def __init__(self) -> None:
        super().__init__()
        self.after_renew: Callable[[], None] = lambda: None

    def renew(self, approval_id: str, *, token: str, lineage: LineageContext, **kwargs: Any) -> Any:
        renewed = super().renew(approval_id, token=token, lineage=lineage, **kwargs)
        self.after_renew()
        return renewed

    def create(self, approval: Any) -> bool:
        created = super().create(approval)
        if created:
            self.after_renew()
        return created


def catch(state: dict[str, Any], error: str) -> str:
    return next(str(c["Next"]) for c in state["Catch"] if error in c["ErrorEquals"])


def choose(state: dict[str, Any], value: str) -> str:
    for choice in state["Choices"]:
        if choice["StringEquals"] == value:
            return str(choice["Next"])
    return str(state["Default"])


def _at(moment: Callable[[str], None], name: str) -> Callable[[], None]:
    return lambda: moment(name)


def walk(world: World, sfn: LadderSfn, moment: Callable[[str], None]) -> tuple[str, list[str]]:
    """Run the ladder from the first stage; ``moment(name)`` is called at each boundary."""
    store = world.store
    assert isinstance(store, HookedStore)
    name, visited, tokens = START, [], iter(f"TOKEN-{n}-" + "t" * 200 for n in range(10))
    while name not in ENDS:
        visited.append(name)
        state = DEFINITION[name]
        stage = state["Parameters"]["Payload"]["stage"]
        if state["Resource"].endswith(".waitForTaskToken"):
            token = next(tokens)
            moment(f"before {stage}")
            sfn.starting.add(token)
            store.after_renew = _at(moment, f"inside {stage}")
            try:
                world.requests.handle(stage_event(stage, token, state=name))
            except ApprovalDecided:
                name = catch(state, "Approval.Decided")
                continue
            finally:
                sfn.starting.discard(token)
                store.after_renew = lambda: None
            sfn.waiting.add(token)
            moment(f"waiting {stage}")
            outcome = sfn.outcomes.get(token)
            sfn.waiting.discard(token)  # answered, or timed out: the token is closed either way
            if outcome is None:
                moment(f"timed out {stage}")
                name = catch(state, "States.Timeout")
            elif outcome["kind"] == "success":
                name = str(state["Next"])
            else:
                name = catch(state, outcome["error"])
        else:
            moment(f"before {stage}")
            result = world.requests.handle(stage_event(stage, None, state=name))
            moment(f"after {stage}")
            choice = DEFINITION[state["Next"]]
            assert choice["Type"] == "Choice"
            name = choose(choice, result["decision"])
    return ENDS[name], visited


MOMENTS = [
    f"{when} {stage}"
    for stage in ("request", "reminder", "escalation")
    for when in ("inside", "waiting", "timed out", "before")
    if (when, stage) != ("before", "request")
] + ["before expire", "after expire"]


@pytest.mark.parametrize("drops_early", [False, True], ids=["aws", "drops-early"])
@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("at", MOMENTS)
def test_the_acknowledged_decision_is_the_outcome(at: str, action: str, drops_early: bool) -> None:
    # Given the ladder, a Step Functions that may drop early responses, and one click at `at`
    world = World()
    world.store = HookedStore()
    sfn = LadderSfn(drops_early=drops_early)
    world.requests.store = world.interactions.store = world.store
    world.interactions.responder = sfn
    replies: list[dict[str, Any]] = []

    def moment(name: str) -> None:
        if name == at and not replies:
            replies.append(click(world, click_body(action, APPROVAL_ID)).body)

    # When the workflow runs the ladder
    outcome, visited = walk(world, sfn, moment)

    # Then the approver was answered, and the workflow did what the answer said
    [reply] = replies
    assert reply["status"] in {"approved", "rejected", "expired"}, reply
    assert outcome == reply["status"], (at, visited)
    assert world.store.items[APPROVAL_ID].status is Status(reply["status"])
    # ... a click before the expiry decides; one after it is told it expired
    assert (reply["status"] == "expired") == (at == "after expire")


def test_without_a_click_the_ladder_expires() -> None:
    world = World()
    world.store = HookedStore()
    world.requests.store = world.interactions.store = world.store
    outcome, visited = walk(world, LadderSfn(drops_early=False), lambda _name: None)
    assert outcome == "expired"
    assert visited == [
        "Ask an approver in Slack",
        "Remind the approver",
        "Escalate to the second approver",
        "Expire the approval request",
    ]


def test_click_and_expiry_racing_decide_once() -> None:
    # Given a pending approval whose expiry write and a click land together
    world = World()
    world.requests.handle(stage_event("request"))
    world.store.expire(APPROVAL_ID, now="t", expected=frozenset({Status.PENDING}))

    # Then the click loses the conditional write and is told so; nothing is decided after it
    with pytest.raises(ApprovalConflict):
        world.store.decide(APPROVAL_ID, decision="approved", decided_by="U0ALICE", now="t")
    assert click(world, click_body("approve", APPROVAL_ID)).body["status"] == "expired"
    assert world.requests.handle(stage_event("expire", None))["decision"] == "expired"
