"""Authorization: an actor on every call, a pluggable policy, and denials that change nothing (S5)."""

from datetime import timedelta

import attrs
import pytest

from conftest import WASH, at, business, state_hash
from slotengine.authorization import Actor, DenyAll, Permission, Role, RolePolicy
from slotengine.engine import BookingEngine
from slotengine.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    PolicyViolationError,
    SlotEngineError,
)
from slotengine.model import Resource
from slotengine.money import Money
from slotengine.policies import Policies

ANN = Actor.customer("ann")
BOB = Actor.customer("bob")
EUR = Money("20", "EUR")

CALLS = {
    "confirm": lambda e, b, a: e.confirm(b, actor=a),
    "pay": lambda e, b, a: e.pay(b, EUR, payment_id="p9", actor=a),
    "refund": lambda e, b, a: e.refund(b, Money("1", "EUR"), payment_id="r9", actor=a),
    "cancel": lambda e, b, a: e.cancel(b, actor=a),
    "reschedule": lambda e, b, a: e.reschedule(b, at(4, 9), actor=a),
    "check_in": lambda e, b, a: e.check_in(b, actor=a),
    "mark_no_show": lambda e, b, a: e.mark_no_show(b, actor=a),
    "complete": lambda e, b, a: e.complete(b, actor=a),
    "get": lambda e, b, a: e.get(b, actor=a),
    "book": lambda e, b, a: e.book("wash", at(3, 12), actor=a),
    "setup": lambda e, b, a: e.add_resource(Resource("box9", "Box 9", type="box"), actor=a),
    "prune": lambda e, b, a: e.prune(keep_messages=timedelta(0), keep_keys=timedelta(0), actor=a),
}
PERMISSION = {
    "confirm": Permission.CONFIRM,
    "pay": Permission.PAY,
    "refund": Permission.REFUND,
    "cancel": Permission.CANCEL,
    "reschedule": Permission.RESCHEDULE,
    "check_in": Permission.CHECK_IN,
    "mark_no_show": Permission.MARK_NO_SHOW,
    "complete": Permission.COMPLETE,
    "get": Permission.READ,
    "book": Permission.BOOK,
    "setup": Permission.SETUP,
    "prune": Permission.PRUNE,
}
ACTORS = [ANN, BOB, Actor.staff("sam"), Actor.manager("mia"), Actor.admin("ada"), Actor.system()]


@pytest.fixture
def held(engine):
    """Ann's pre-booking and a paid booking of hers."""
    booking = engine.hold("wash", at(3, 9), actor=ANN)
    return booking.id


class TestMatrix:
    @pytest.mark.parametrize("actor", ACTORS, ids=str)
    @pytest.mark.parametrize("call", sorted(CALLS))
    def test_denied_calls_change_nothing(self, engine, held, actor, call):
        """Every actor × action: a denial is PermissionDeniedError, decided before any write."""
        allowed = RolePolicy()
        booking = engine.get(held)
        try:
            allowed.authorize(actor, PERMISSION[call], booking)
            expect_denied = False
        except PermissionDeniedError:
            expect_denied = True
        before = state_hash(engine)

        if expect_denied:
            with pytest.raises(PermissionDeniedError):
                CALLS[call](engine, held, actor)
            assert before == state_hash(engine)
            return
        try:
            CALLS[call](engine, held, actor)
        except SlotEngineError as error:  # allowed; a policy or the lifecycle may still refuse
            assert not isinstance(error, PermissionDeniedError)

    def test_customers_act_only_on_their_own(self, engine, held):
        """Bob cannot read, pay, cancel or move Ann's booking; Ann can."""
        for call in ("get", "pay", "cancel", "reschedule"):
            with pytest.raises(PermissionDeniedError, match="not their booking"):
                CALLS[call](engine, held, BOB)

        assert ANN.customer_id == engine.get(held, actor=ANN).customer_id
        assert [held] == [b.id for b in engine.list(actor=ANN)]
        assert [] == engine.list(actor=BOB)

    def test_customers_book_only_for_themselves(self, engine):
        """A customer's booking is theirs; booking for someone else is refused."""
        booking = engine.hold("wash", at(3, 10), actor=BOB)

        assert "bob" == booking.customer_id
        with pytest.raises(PermissionDeniedError):
            engine.hold("wash", at(3, 11), actor=BOB, customer_id="ann")

    def test_a_customer_actor_names_its_customer(self, engine):
        """A customer role without a customer id is refused when built; a policy never matches None with None."""
        walk_in = engine.book("wash", at(3, 12), actor=Actor.staff("sam"))  # no customer

        with pytest.raises(InvalidInputError, match="customer_id"):
            Actor("eve", Role.CUSTOMER)
        nobody = attrs.evolve(ANN, customer_id="x")
        object.__setattr__(nobody, "customer_id", None)  # built around the check, as a policy might be handed
        with pytest.raises(PermissionDeniedError, match="not their booking"):
            RolePolicy().authorize(nobody, Permission.CANCEL, walk_in)

    @pytest.mark.parametrize(
        ("call", "key_call"),
        [
            ("cancel", lambda e, b, a: e.cancel(b, actor=a, idempotency_key="k")),
            ("reschedule", lambda e, b, a: e.reschedule(b, at(4, 9), actor=a, idempotency_key="k")),
        ],
    )
    def test_a_replayed_key_is_authorized_like_the_call(self, engine, held, call, key_call):
        """Bob replaying the key of Ann's cancel or move gets PermissionDeniedError, not her booking."""
        key_call(engine, held, ANN)
        before = state_hash(engine)

        with pytest.raises(PermissionDeniedError, match="not their booking"):
            key_call(engine, held, BOB)
        assert before == state_hash(engine)
        assert held == key_call(engine, held, ANN).id

    def test_a_replayed_confirm_key_is_authorized(self, engine, held):
        """A customer may not confirm, not even by replaying staff's key."""
        engine.confirm(held, actor=Actor.staff("sam"), idempotency_key="c1")

        with pytest.raises(PermissionDeniedError):
            engine.confirm(held, actor=BOB, idempotency_key="c1")

    def test_customers_cannot_read_the_outbox_or_all_history(self, engine, held):
        """The outbox and the full log are for staff."""
        with pytest.raises(PermissionDeniedError):
            engine.outbox(actor=ANN)
        with pytest.raises(PermissionDeniedError):
            engine.transitions(actor=ANN)
        assert 1 == len(engine.transitions(held, actor=ANN))


class TestNoImplicitAllow:
    def test_no_actor_is_refused(self, storage, clock):
        """Without an actor on the call or a default actor, every call is refused."""
        engine = BookingEngine(storage, clock=clock, tenant="t")

        with pytest.raises(PermissionDeniedError, match="no actor"):
            engine.setup(business())

    def test_deny_all_refuses_every_mutation_with_no_side_effects(self, storage, clock):
        """With DenyAll, 100 % of calls fail and storage is unchanged."""
        setup = BookingEngine(storage, clock=clock, tenant="t", default_actor=Actor.system())
        setup.setup(business())
        setup.add_resource(Resource("box1", "Box 1", type="box"))
        setup.add_service(WASH)
        booking = setup.hold("wash", at(3, 9))
        denied = BookingEngine(storage, clock=clock, tenant="t", authorization=DenyAll(), default_actor=Actor.system())
        before = state_hash(setup)

        for name, call in CALLS.items():
            with pytest.raises(PermissionDeniedError):
                call(denied, booking.id, Actor.system())
            assert before == state_hash(setup), name
        with pytest.raises(PermissionDeniedError):
            denied.hold("wash", at(3, 10))
        with pytest.raises(PermissionDeniedError):
            denied.expire_due()


class TestOverride:
    def test_manager_override_where_allowed(self, storage, clock):
        """A manager may book outside hours where the business allows it, never beyond capacity."""
        engine = BookingEngine(storage, clock=clock, tenant="o", default_actor=Actor.system())
        engine.setup(_with_override(business()))
        engine.add_resource(Resource("box1", "Box 1", type="box"))
        engine.add_service(WASH)
        mia = Actor.manager("mia")

        late = engine.book("wash", at(3, 20), actor=mia, override=True)
        assert at(3, 20) == late.start
        assert "override" == engine.transitions(late.id)[0].reason
        with pytest.raises(PermissionDeniedError):
            engine.book("wash", at(3, 21), actor=Actor.staff("sam"), override=True)
        with pytest.raises(ConflictError):
            engine.book("wash", at(3, 20), actor=mia, override=True)

    def test_override_refused_by_policy(self, engine):
        """Where the business does not allow overrides, even a manager gets a policy error."""
        with pytest.raises(PolicyViolationError, match="does not allow"):
            engine.book("wash", at(3, 20), actor=Actor.manager("mia"), override=True)


def _with_override(b):
    import attrs

    return attrs.evolve(b, policies=attrs.evolve(b.policies, allow_override=True))


def test_roles_cover_every_permission():
    """The system may do everything; every permission belongs to some role."""
    from slotengine.authorization import ROLE_PERMISSIONS

    assert set(Permission) == ROLE_PERMISSIONS[Role.SYSTEM]
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert isinstance(Policies().allow_override, bool)
