from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymlaas.deploy.campaigns import (
    CAMPAIGN_TRANSITIONS,
    INSTALLATION_TRANSITIONS,
    TERMINAL_INSTALLATION_STATES,
    Campaign,
    CampaignPlan,
    CampaignState,
    DeviceRef,
    InstallationState,
    installation_state_for,
    select_targets,
)
from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.lwm2m.core import UpdateResult, UpdateState

I = InstallationState  # noqa: E741
C = CampaignState

ENDPOINTS = tuple(f"dev-{i:02d}" for i in range(20))


def _plan(stages=(10, 50, 100), max_failures: int | float = 100, targets=ENDPOINTS) -> CampaignPlan:
    return CampaignPlan(stages=stages, max_failures=max_failures, targets=targets)


def _succeed(campaign: Campaign, endpoint: str) -> Campaign:
    for state in (I.SENT, I.DOWNLOADING, I.INSTALLING, I.SUCCEEDED):
        campaign = campaign.record(endpoint, state)
    return campaign


def _fail(campaign: Campaign, endpoint: str) -> Campaign:
    return campaign.record(endpoint, I.SENT).record(endpoint, I.FAILED)


# --- the state tables -------------------------------------------------------------------------------


def test_every_state_has_a_row():
    assert set(INSTALLATION_TRANSITIONS) == set(InstallationState)
    assert set(CAMPAIGN_TRANSITIONS) == set(CampaignState)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(InstallationState, repeat=2)))
def test_installation_pairs(current, target):
    expected = {
        (I.PENDING, I.REFUSED),
        (I.PENDING, I.SENT),
        (I.PENDING, I.CANCELLED),
        (I.SENT, I.DOWNLOADING),
        (I.SENT, I.INSTALLING),
        (I.SENT, I.SUCCEEDED),
        (I.SENT, I.FAILED),
        (I.DOWNLOADING, I.INSTALLING),
        (I.DOWNLOADING, I.SUCCEEDED),
        (I.DOWNLOADING, I.FAILED),
        (I.INSTALLING, I.SUCCEEDED),
        (I.INSTALLING, I.FAILED),
        (I.SUCCEEDED, I.ROLLED_BACK),
        (I.SUCCEEDED, I.ROLLBACK_FAILED),
    }
    assert (target in INSTALLATION_TRANSITIONS[current]) == ((current, target) in expected)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(CampaignState, repeat=2)))
def test_campaign_pairs(current, target):
    expected = {
        (C.DRAFT, C.RUNNING),
        (C.DRAFT, C.CANCELLED),
        (C.RUNNING, C.HALTED),
        (C.RUNNING, C.COMPLETED),
        (C.RUNNING, C.CANCELLED),
        (C.RUNNING, C.ROLLING_BACK),
        (C.HALTED, C.CANCELLED),
        (C.HALTED, C.ROLLING_BACK),
        (C.COMPLETED, C.ROLLING_BACK),
        (C.CANCELLED, C.ROLLING_BACK),
        (C.ROLLING_BACK, C.ROLLED_BACK),
    }
    assert (target in CAMPAIGN_TRANSITIONS[current]) == ((current, target) in expected)


def test_terminal_installation_states_have_no_way_out_but_rollback():
    for state in TERMINAL_INSTALLATION_STATES:
        assert INSTALLATION_TRANSITIONS[state] <= {I.ROLLED_BACK, I.ROLLBACK_FAILED}


@pytest.mark.parametrize(
    ("state", "result", "expected"),
    [
        (UpdateState.INITIAL, UpdateResult.INITIAL, None),
        (UpdateState.DOWNLOAD_STARTED, UpdateResult.DOWNLOADING, I.DOWNLOADING),
        (UpdateState.DOWNLOADED, UpdateResult.DOWNLOADING, I.DOWNLOADING),
        (UpdateState.DELIVERED, UpdateResult.DOWNLOADED_VERIFIED, I.INSTALLING),
        (UpdateState.INSTALLED, UpdateResult.INSTALLED, I.SUCCEEDED),
        (UpdateState.INITIAL, UpdateResult.INTEGRITY_CHECK_FAILURE, I.FAILED),
        (UpdateState.DELIVERED, UpdateResult.INSTALLATION_FAILURE, I.FAILED),
    ],
)
def test_device_reports_map_to_installation_states(state, result, expected):
    assert installation_state_for(state, result) is expected


# --- the plan ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "max_failures", "targets", "message"),
    [
        ((), 0, ENDPOINTS, "at least one stage"),
        ((50, 10, 100), 0, ENDPOINTS, "strictly increasing"),
        ((10, 10, 100), 0, ENDPOINTS, "strictly increasing"),
        ((0, 100), 0, ENDPOINTS, "1..100"),
        ((50, 101), 0, ENDPOINTS, "1..100"),
        ((10, 50), 0, ENDPOINTS, "last stage must be 100"),
        ((100,), -1, ENDPOINTS, "at least 0"),
        ((100,), 1.5, ENDPOINTS, "0.0..1.0"),
        ((100,), True, ENDPOINTS, "count"),
        ((100,), 0, (), "at least one target"),
        ((100,), 0, ("a", "b", "a"), "more than once: a"),
    ],
)
def test_plan_validation(stages, max_failures, targets, message):
    with pytest.raises(InvalidInput, match=message):
        CampaignPlan(stages=stages, max_failures=max_failures, targets=targets)


def test_stage_sizes_round_up():
    plan = _plan(targets=ENDPOINTS[:3])
    assert [plan.stage_size(k) for k in range(3)] == [1, 2, 3]


# --- a rollout --------------------------------------------------------------------------------------


def test_staged_rollout_on_20_devices_sends_2_then_8_then_10():
    campaign = Campaign("c1", _plan()).start()
    batches = []
    while campaign.state is C.RUNNING:
        batch = campaign.next_batch()
        batches.append(batch)
        for endpoint in batch:
            campaign = campaign.record(endpoint, I.SENT)
        assert campaign.next_batch() == ()
        for endpoint in batch:
            for state in (I.DOWNLOADING, I.INSTALLING, I.SUCCEEDED):
                campaign = campaign.record(endpoint, state)
    assert [len(b) for b in batches] == [2, 8, 10]
    assert sum(batches, ()) == ENDPOINTS
    assert campaign.state is C.COMPLETED
    assert campaign.progress().percent_done == 100.0
    assert campaign.progress().counts[I.SUCCEEDED] == 20


def test_a_stage_waits_for_every_outcome_of_the_one_before():
    campaign = Campaign("c1", _plan()).start()
    campaign = _succeed(campaign, "dev-00").record("dev-01", I.SENT)
    assert campaign.next_batch() == ()
    assert campaign.current_stage == 0
    campaign = campaign.record("dev-01", I.DOWNLOADING)
    assert campaign.next_batch() == ()
    campaign = campaign.record("dev-01", I.SUCCEEDED)
    assert campaign.current_stage == 1
    assert len(campaign.next_batch()) == 8


def test_a_refused_device_keeps_its_place_in_the_stage():
    campaign = Campaign("c1", _plan()).start()
    campaign = _succeed(campaign.record("dev-00", I.REFUSED), "dev-01")
    assert campaign.next_batch() == ENDPOINTS[2:10]
    assert campaign.progress().counts[I.REFUSED] == 1


def test_the_campaign_is_an_immutable_value():
    draft = Campaign("c1", _plan())
    running = draft.start()
    sent = running.record("dev-00", I.SENT)
    assert draft.state is C.DRAFT
    assert running.installations["dev-00"] is I.PENDING
    assert sent.installations["dev-00"] is I.SENT
    with pytest.raises(TypeError):
        sent.installations["dev-00"] = I.FAILED  # type: ignore[index]


def test_a_draft_sends_nothing_and_takes_no_reports():
    draft = Campaign("c1", _plan())
    assert draft.next_batch() == ()
    with pytest.raises(Conflict):
        draft.record("dev-00", I.SENT)


def test_record_rejects_unknown_endpoints_illegal_moves_and_sends_outside_the_stage():
    campaign = Campaign("c1", _plan()).start()
    with pytest.raises(NotFound, match="dev-99"):
        campaign.record("dev-99", I.SENT)
    with pytest.raises(Conflict, match="pending and cannot become succeeded"):
        campaign.record("dev-00", I.SUCCEEDED)
    with pytest.raises(Conflict, match="not in the current stage"):
        campaign.record("dev-05", I.SENT)
    with pytest.raises(Conflict, match="cannot become cancelled"):
        campaign.record("dev-00", I.CANCELLED)
    with pytest.raises(Conflict):
        campaign.start()


def test_installations_must_match_the_targets():
    with pytest.raises(InvalidInput, match="exactly the plan's targets"):
        Campaign("c1", _plan(targets=("a", "b")), installations={"a": I.PENDING})


# --- failure threshold ------------------------------------------------------------------------------


def test_failures_over_an_absolute_threshold_halt_the_campaign():
    campaign = Campaign("c1", _plan(max_failures=1)).start()
    campaign = _fail(campaign, "dev-00")
    assert campaign.state is C.RUNNING
    campaign = _fail(campaign, "dev-01")
    assert campaign.state is C.HALTED
    assert campaign.next_batch() == ()
    with pytest.raises(Conflict, match="halted"):
        campaign.record("dev-02", I.SENT)


def test_a_fractional_threshold_counts_installations_sent_so_far():
    campaign = Campaign("c1", _plan(stages=(50, 100), max_failures=0.25)).start()
    for endpoint in ENDPOINTS[:7]:
        campaign = _succeed(campaign, endpoint)
    campaign = _fail(campaign, "dev-07")
    campaign = _fail(campaign, "dev-08")
    assert campaign.state is C.RUNNING  # 2 of 9 sent
    campaign = _fail(campaign, "dev-09")
    assert campaign.state is C.HALTED  # 3 of 10 sent


def test_devices_in_flight_still_report_after_a_halt():
    campaign = Campaign("c1", _plan(max_failures=0)).start()
    campaign = campaign.record("dev-01", I.SENT)
    campaign = _fail(campaign, "dev-00")
    assert campaign.state is C.HALTED
    campaign = campaign.record("dev-01", I.SUCCEEDED)
    assert campaign.installations["dev-01"] is I.SUCCEEDED
    assert campaign.state is C.HALTED


def test_halt_wins_over_completion_when_the_last_outcome_crosses_the_threshold():
    campaign = Campaign("c1", _plan(stages=(100,), max_failures=0, targets=("a",))).start()
    assert _fail(campaign, "a").state is C.HALTED


# --- cancel and rollback ----------------------------------------------------------------------------


def test_cancel_marks_every_unsent_target_cancelled():
    campaign = Campaign("c1", _plan()).start()
    campaign = _succeed(campaign, "dev-00").record("dev-01", I.SENT).cancel()
    assert campaign.state is C.CANCELLED
    assert campaign.endpoints(I.CANCELLED) == ENDPOINTS[2:]
    assert campaign.installations["dev-00"] is I.SUCCEEDED
    campaign = campaign.record("dev-01", I.FAILED)
    assert campaign.installations["dev-01"] is I.FAILED
    with pytest.raises(Conflict):
        campaign.cancel()


def test_a_draft_can_be_cancelled():
    campaign = Campaign("c1", _plan()).cancel()
    assert campaign.state is C.CANCELLED
    assert campaign.progress().counts[I.CANCELLED] == 20


def test_rollback_lists_the_succeeded_endpoints():
    campaign = Campaign("c1", _plan()).start()
    campaign = _fail(_succeed(campaign, "dev-00"), "dev-01")
    campaign = _succeed(campaign, "dev-03")
    campaign, to_revert = campaign.rollback()
    assert to_revert == ("dev-00", "dev-03")
    assert campaign.state is C.ROLLING_BACK
    assert campaign.installations["dev-19"] is I.CANCELLED
    campaign = campaign.record("dev-00", I.ROLLED_BACK)
    assert campaign.state is C.ROLLING_BACK
    campaign = campaign.record("dev-03", I.ROLLED_BACK)
    assert campaign.state is C.ROLLED_BACK
    assert campaign.installations["dev-01"] is I.FAILED


def test_rollback_waits_for_devices_still_in_flight():
    campaign = Campaign("c1", _plan()).start()
    campaign = _succeed(campaign, "dev-00").record("dev-01", I.SENT)
    campaign, to_revert = campaign.rollback()
    assert to_revert == ("dev-00",)
    campaign = campaign.record("dev-00", I.ROLLED_BACK)
    assert campaign.state is C.ROLLING_BACK
    campaign = campaign.record("dev-01", I.SUCCEEDED)
    assert campaign.endpoints(I.SUCCEEDED) == ("dev-01",)
    assert campaign.record("dev-01", I.ROLLED_BACK).state is C.ROLLED_BACK


def test_a_failed_revert_is_an_outcome_that_ends_the_rollback():
    campaign = Campaign("c1", _plan(stages=(100,), targets=("a", "b"))).start()
    campaign, _ = _succeed(_succeed(campaign, "a"), "b").rollback()
    campaign = campaign.record("a", I.ROLLBACK_FAILED)
    assert campaign.state is C.ROLLING_BACK
    campaign = campaign.record("b", I.ROLLED_BACK)
    assert campaign.state is C.ROLLED_BACK
    assert campaign.progress().counts[I.ROLLBACK_FAILED] == 1


def test_rollback_with_nothing_installed_finishes_at_once():
    campaign, to_revert = Campaign("c1", _plan()).start().rollback()
    assert to_revert == ()
    assert campaign.state is C.ROLLED_BACK


def test_a_completed_campaign_can_be_rolled_back_but_not_cancelled():
    campaign = Campaign("c1", _plan(stages=(100,), targets=("a", "b"))).start()
    campaign = _succeed(_succeed(campaign, "a"), "b")
    assert campaign.state is C.COMPLETED
    with pytest.raises(Conflict):
        campaign.cancel()
    with pytest.raises(Conflict):
        campaign.record("a", I.ROLLED_BACK)
    assert campaign.rollback()[1] == ("a", "b")


def test_progress_counts_every_state():
    campaign = Campaign("c1", _plan()).start()
    campaign = _fail(_succeed(campaign, "dev-00"), "dev-01").record("dev-02", I.SENT)
    progress = campaign.progress()
    assert set(progress.counts) == set(InstallationState)
    assert progress.counts[I.PENDING] == 17
    assert progress.counts[I.SENT] == 1
    assert (progress.total, progress.done, progress.percent_done) == (20, 2, 10.0)
    assert (progress.stage, progress.stages) == (1, 3)


# --- target selection -------------------------------------------------------------------------------

FLEET = (
    DeviceRef("pi-2", "rpi4", {"lab"}),
    DeviceRef("nano-1", "nano33ble", {"lab", "canary"}),
    DeviceRef("pi-1", "rpi4", frozenset()),
    DeviceRef("nano-2", "nano33ble", {"field"}),
)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("board:rpi4", ("pi-1", "pi-2")),
        ("tag:lab", ("nano-1", "pi-2")),
        (" tag: canary ", ("nano-1",)),
        ("nano-2,pi-1", ("nano-2", "pi-1")),
        ("pi-1, nano-2 ,pi-1", ("pi-1", "nano-2")),
    ],
)
def test_selectors(selector, expected):
    assert select_targets(FLEET, selector) == expected


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("board:esp32s3", "board 'esp32s3'"),
        ("tag:nowhere", "tag 'nowhere'"),
        ("board:", "names no board"),
        ("", "empty"),
        ("pi-1,,pi-2", "empty entry"),
        ("pi-1,pi-9,ghost", "pi-9, ghost"),
    ],
)
def test_selector_errors_name_the_problem(selector, message):
    with pytest.raises(InvalidInput, match=message):
        select_targets(FLEET, selector)


def test_selected_targets_make_a_valid_plan():
    plan = CampaignPlan((50, 100), 0, select_targets(FLEET, "board:nano33ble"))
    assert Campaign("c", plan).start().next_batch() == ("nano-1",)


# --- properties -------------------------------------------------------------------------------------


@st.composite
def _plans(draw: st.DrawFn) -> CampaignPlan:
    n = draw(st.integers(1, 40))
    stages = sorted(draw(st.sets(st.integers(1, 99), max_size=4)) | {100})
    if draw(st.booleans()):
        limit: int | float = draw(st.integers(0, 10))
    else:
        limit = draw(st.floats(0.0, 1.0))
    return CampaignPlan(tuple(stages), limit, tuple(f"d{i}" for i in range(n)))


_OUTCOMES = st.sampled_from(["succeed", "fail", "refuse", "cancel"])


@settings(max_examples=150, deadline=None)
@given(plan=_plans(), outcomes=st.lists(_OUTCOMES, min_size=1, max_size=60))
def test_rollouts_stay_within_their_stage_and_always_end(plan, outcomes):
    campaign = Campaign("p", plan).start()
    choices = itertools.chain(outcomes, itertools.repeat("succeed"))
    while campaign.state is C.RUNNING:
        batch = campaign.next_batch()
        assert batch, "a running campaign with nothing in flight must have something to send"
        for endpoint in batch:
            if campaign.state is not C.RUNNING:
                break
            choice = next(choices)
            if choice == "cancel":
                campaign = campaign.cancel()
            elif choice == "refuse":
                campaign = campaign.record(endpoint, I.REFUSED)
            elif choice == "fail":
                campaign = _fail(campaign, endpoint)
            else:
                campaign = _succeed(campaign, endpoint)
            attempted = sum(s not in (I.PENDING, I.CANCELLED) for s in campaign.installations.values())
            assert attempted <= plan.stage_size(campaign.current_stage)
    assert campaign.state in (C.COMPLETED, C.HALTED, C.CANCELLED)
    if campaign.state is C.COMPLETED:
        assert all(s in TERMINAL_INSTALLATION_STATES for s in campaign.installations.values())
        counts = campaign.progress().counts
        assert not plan.exceeded(counts[I.FAILED], counts[I.SUCCEEDED] + counts[I.FAILED])
