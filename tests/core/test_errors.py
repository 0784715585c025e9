"""The exception tree: one root, stable codes, built-ins where they fit."""

import inspect

import pytest

from slotengine import errors
from slotengine.errors import (
    ConcurrencyError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PolicyViolationError,
    SlotEngineError,
    StorageError,
)

ALL_ERRORS = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, SlotEngineError) and obj is not SlotEngineError
]


class TestTree:
    def test_root_is_abstract(self):
        """SlotEngineError itself cannot be raised; only its subclasses can."""
        with pytest.raises(TypeError, match="abstract"):
            SlotEngineError("boom")

    def test_codes_are_unique_and_stable(self):
        """Every error class has its own snake_case code."""
        codes = [cls.code for cls in ALL_ERRORS]

        assert len(codes) == len(set(codes))
        assert all(code.replace("_", "").isalpha() and code.islower() for code in codes)

    def test_every_error_is_exported(self):
        """__all__ lists every error class and is sorted."""
        assert sorted(errors.__all__) == errors.__all__
        assert {cls.__name__ for cls in ALL_ERRORS} | {"SlotEngineError"} == set(errors.__all__)

    def test_builtins(self):
        """Input errors are ValueErrors, missing things LookupErrors, concurrency errors retryable storage errors."""
        assert issubclass(InvalidInputError, ValueError)
        assert issubclass(NotFoundError, LookupError)
        assert issubclass(ConcurrencyError, StorageError)
        assert ConcurrencyError.retryable

    @pytest.mark.parametrize("cls", ALL_ERRORS)
    def test_every_error_has_a_docstring_and_message(self, cls):
        """Each error documents itself and carries its message and details."""
        kwargs = {}
        if cls is IllegalTransitionError:
            kwargs = {"status": "paid", "action": "hold"}
        elif issubclass(cls, PolicyViolationError):
            kwargs = {"rule": "cancellation_deadline"}
        error = cls("a message for people", **kwargs)

        assert cls.__doc__
        assert "a message for people" == str(error)
        assert set(kwargs) <= set(error.details)

    def test_transition_error_carries_status_and_action(self):
        """IllegalTransitionError names the status and the action that were refused."""
        error = IllegalTransitionError("no", status="paid", action="hold")

        assert ("paid", "hold") == (error.status, error.action)
