"""API input: JSON bodies and query filters taken exactly as the OpenAPI schema documents them,
validated and rendered by one serializer instance per process."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, parsers, serializers

# (field class, JSON types the OpenAPI schema gives it, how to say so); first match wins.
_JSON_TYPES: tuple = (
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "a whole number"),
    (serializers.DecimalField, (str,), "a decimal string such as \"49.00\""),
    (serializers.CharField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _wrong_json_type(field: serializers.Field, value: Any) -> str | None:
    """Why `value`, as parsed from JSON, does not have the type the schema gives `field`; None if it does."""
    if value is None:
        return None  # the field's own `allow_null` decides
    if isinstance(field, serializers.ListField):
        items = value if isinstance(value, list) else []
        return next((reason for item in items if (reason := _wrong_json_type(field.child, item))), None)
    for field_class, types, label in _JSON_TYPES:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types:
                return f"Must be {label}."
            if field_class is serializers.IntegerField and isinstance(value, float) and value.is_integer():
                return None  # 2.0 is a JSON Schema integer
            return None if isinstance(value, types) else f"Must be {label}."
    return None


def _unlike_declared(field: serializers.Field, value: Any) -> str | None:
    """Why a string, as sent, breaks a rule the schema declares for it; None if it does not.

    Length, pattern and `format: uuid` (the hyphenated form) are checked on the string as
    sent, where DRF would trim it or take any form `uuid.UUID` parses. A field's checks are
    worked out once and kept on the field (fields are shared, see `validated`).
    """
    if isinstance(value, str):
        check = field.__dict__.get("_as_sent", _UNSET)
        if check is _UNSET:
            check = field.__dict__["_as_sent"] = _string_check(field)
        return check(value) if check is not None else None
    if isinstance(value, list) and isinstance(field, serializers.ListField):
        return next((reason for item in value if (reason := _unlike_declared(field.child, item))), None)
    return None


_UNSET = object()


def _string_check(field: serializers.Field):
    """The check of a string as sent for `field`, or None when DRF's own is already as strict."""
    if isinstance(field, serializers.UUIDField):
        message = str(field.error_messages["invalid"])
        return lambda value: None if _UUID.fullmatch(value) else message
    if not isinstance(field, serializers.CharField):
        return None
    email = isinstance(field, serializers.EmailField)  # `format: email` has no spaces around it
    longest, shortest = field.max_length, field.min_length
    patterns = [v for v in field.validators if isinstance(v, RegexValidator)]

    def check(value: str) -> str | None:
        if email and value != value.strip():
            return str(field.error_messages["invalid"])
        if longest is not None and len(value) > longest:
            return str(field.error_messages["max_length"]).format(max_length=longest)
        if shortest is not None and len(value) < shortest:
            return str(field.error_messages["min_length"]).format(min_length=shortest)
        for validator in patterns:
            try:
                validator(value)
            except DjangoValidationError as exc:
                return exc.messages[0]
        return None

    return check


class StrictInput(serializers.Serializer):
    """An input serializer that takes exactly the JSON values its OpenAPI schema documents.

    A value of the wrong JSON type (12 for a string, "12" for a whole number) is a 400 like
    any other invalid value, and so is a string that breaks its declared length or pattern
    as sent; DRF's fields alone would coerce or trim it.
    """

    json_types = True

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {
                name: [reason] for name, field in self.fields.items()
                if name in data and not field.read_only
                and (reason := (self.json_types and _wrong_json_type(field, data[name]))
                     or _unlike_declared(field, data[name]))
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictQuery(StrictInput):
    """Query filters (always strings), checked as sent like `StrictInput`'s strings."""

    json_types = False


class Rendered:
    """Output serializers that read nothing from their context: `render(instance)` answers
    `cls(instance).data`, from one instance of the serializer per process (see `validated`)."""

    @classmethod
    def render(cls, instance, *, many: bool = False):
        return _shared_serializer(cls, many=many).to_representation(instance)


def validated(serializer_class: type[serializers.Serializer], data, *, partial: bool = False) -> dict[str, Any]:
    """What `serializer_class(data=data, partial=partial).is_valid(raise_exception=True)` validates
    (a 400 with the field errors otherwise), from one instance of the serializer per process.

    DRF builds a serializer's fields on every instantiation, which costs more than validating
    a small body; fields keep no state between uses, so one instance serves every request.
    For serializers that read nothing from their context.
    """
    try:
        return _shared_serializer(serializer_class, partial=partial).run_validation(data)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(exc.detail) from None


@functools.cache
def _shared_serializer(serializer_class: type[serializers.BaseSerializer], *, many: bool = False,
                       partial: bool = False) -> serializers.BaseSerializer:
    return serializer_class(many=many, partial=partial)


MONEY_PATTERN = r"^\d{1,8}(\.\d{1,2})?$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": MONEY_PATTERN, "example": "49.00"})
class MoneyField(serializers.DecimalField):
    """An amount in: a decimal string such as "49.00" (DESIGN.md section 9), at least 0, at most 2 places.

    Only the plain form: no number, sign, exponent or blanks, which DRF's DecimalField would take.
    """

    def __init__(self, **kwargs):
        super().__init__(max_digits=10, decimal_places=2, min_value=0, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(MONEY_PATTERN, data):
            self.fail("invalid")
        return super().to_internal_value(data)


def query_filters(filter_class: type[serializers.Serializer], request) -> dict[str, Any]:
    """The request's query filters, validated by `filter_class` (400 with field errors otherwise).

    Validated as a plain dict, so a filter given empty (`?status=`) is refused like any other
    bad value, not dropped as an empty form field: the OpenAPI schema documents no empty values.
    """
    names = _shared_serializer(filter_class).fields.keys()
    return dict(validated(filter_class, {k: v for k, v in request.query_params.items() if k in names}))


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with JSON nested too deeply for Python's parser answered 400, not 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
